use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use EmberTest;
use Ember;

my $s = start_server();
my $c = Ember::conn_connect($s, undef);
my $POLL = Ember::EMBER_DELIVER_POLL;

subtest 'publish and read with next_msg' => sub {
    my $sub = Ember::conn_subscribe($c, "game.pos.*", undef, $POLL);
    Ember::conn_publish($c, "game.pos.7", undef, "x=1,y=2");
    Ember::conn_publish($c, "game.other", undef, "nope");
    my $m = Ember::sub_next_msg($sub, 1000);
    isa_ok($m, 'Ember::msg');
    is(Ember::msg_subject($m), 'game.pos.7', 'subject');
    is(Ember::msg_data($m), 'x=1,y=2', 'data');
    is(Ember::msg_reply($m), undef, 'no reply');
    is(error_code { Ember::sub_next_msg($sub, 20) }, 'ETIMEDOUT', 'nothing else');
    Ember::sub_unsubscribe($sub);
};

subtest 'binary payloads, reply subjects, order' => sub {
    my $sub = Ember::conn_subscribe($c, "bin.>", "", $POLL);
    my $blob = "a\0b\0\xff\x01";
    Ember::conn_publish($c, "bin.1", "reply.1", $blob);
    Ember::conn_publish($c, "bin.2", "", "");
    my $m1 = Ember::sub_next_msg($sub, 1000);
    is(Ember::msg_data($m1), $blob, 'binary-safe');
    is(length(Ember::msg_data($m1)), 6, 'length');
    is(Ember::msg_reply($m1), 'reply.1', 'reply');
    my $m2 = Ember::sub_next_msg($sub, 1000);
    is(Ember::msg_data($m2), '', 'empty payload');
    is(Ember::msg_reply($m2), undef, '"" means no reply');
    Ember::sub_unsubscribe($sub);
};

subtest 'queue groups share the messages' => sub {
    my @subs = map { Ember::conn_subscribe($c, "jobs", "workers", $POLL) } 1 .. 2;
    Ember::conn_publish($c, "jobs", undef, $_) for 1 .. 20;
    my $n = 0;
    for my $sub (@subs) {
        $n++ while eval { Ember::sub_next_msg($sub, 0) };
        Ember::sub_unsubscribe($sub);
    }
    is($n, 20, 'each message to one member');
};

subtest 'unsubscribe; invalid subjects' => sub {
    my $sub = Ember::conn_subscribe($c, "u", undef, $POLL);
    Ember::sub_unsubscribe($sub);
    ok(!Ember::sub_is_valid($sub), 'invalid after unsubscribe');
    is(error_code { Ember::sub_next_msg($sub, 0) }, 'ECLOSED', 'next_msg: closed');
    is(error_code { Ember::conn_publish($c, "bad subject", undef, "x") }, 'EINVAL', 'bad subject');
    is(error_code { Ember::conn_subscribe($c, "a..b", undef, $POLL) }, 'EINVAL', 'bad filter');
    is(error_code { Ember::conn_subscribe($c, "a", undef, Ember::EMBER_DELIVER_INLINE) },
       'EINVAL', 'INLINE needs a callback');
};

subtest 'a TCP listener and an in-process connection share subjects' => sub {
    my $s2 = start_server(tcp => 1);
    my $a = Ember::conn_connect($s2, undef);
    my $b = Ember::conn_connect($s2, undef);
    my $sub = Ember::conn_subscribe($b, "shared", undef, $POLL);
    Ember::conn_publish($a, "shared", undef, "hi");
    is(Ember::msg_data(Ember::sub_next_msg($sub, 1000)), 'hi', 'delivered');
    Ember::conn_close($_) for $a, $b;
    stop_server($s2);
};

Ember::conn_close($c);
stop_server($s);
done_testing;
