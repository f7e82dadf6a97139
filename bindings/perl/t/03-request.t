# Request/reply in one script: the responder is a callback-less subscription of the same
# thread, so the request is a publish with a reply inbox, then next_msg on each side.
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

subtest 'a responder in the same script' => sub {
    my $svc = Ember::conn_subscribe($c, "svc.echo", undef, $POLL);
    my $inbox = Ember::conn_subscribe($c, "_INBOX.perl.*", undef, $POLL);
    for my $i (1 .. 3) {
        Ember::conn_publish($c, "svc.echo", "_INBOX.perl.$i", "ping $i");   # the request
        my $req = Ember::sub_next_msg($svc, 1000);                         # the responder
        Ember::msg_respond($c, $req, "pong: " . Ember::msg_data($req));
        my $rep = Ember::sub_next_msg($inbox, 1000);                       # the reply
        is(Ember::msg_subject($rep), "_INBOX.perl.$i", "reply $i on its inbox");
        is(Ember::msg_data($rep), "pong: ping $i", "reply $i");
    }
    Ember::sub_unsubscribe($_) for $svc, $inbox;
};

subtest 'requests with headers, answered with headers' => sub {
    my $svc = Ember::conn_subscribe($c, "svc.h", undef, $POLL);
    my $inbox = Ember::conn_subscribe($c, "_INBOX.perl.h", undef, $POLL);
    my $q = Ember::msg_new("svc.h", "_INBOX.perl.h", "q");
    Ember::msg_header_add($q, "Trace-Id", "42");
    Ember::conn_publish_msg($c, $q);
    my $req = Ember::sub_next_msg($svc, 1000);
    is(Ember::msg_header_get($req, "Trace-Id"), "42", 'request header');
    my $a = Ember::msg_new(Ember::msg_reply($req), undef, "answer");
    Ember::msg_header_set($a, "Status", "done");
    Ember::conn_publish_msg($c, $a);
    my $rep = Ember::sub_next_msg($inbox, 1000);
    is(Ember::msg_data($rep), "answer", 'reply data');
    is(Ember::msg_header_get($rep, "Status"), "done", 'reply header');
    Ember::sub_unsubscribe($_) for $svc, $inbox;
};

subtest 'errors' => sub {
    is(error_code { Ember::conn_request($c, "nobody.home", "hi", 500) }, 'ENORESPONDERS',
       'no responders');
    my $sub = Ember::conn_subscribe($c, "noreply", undef, $POLL);
    Ember::conn_publish($c, "noreply", undef, "x");
    my $m = Ember::sub_next_msg($sub, 1000);
    is(error_code { Ember::msg_respond($c, $m, "answer") }, 'EINVAL', 'respond without reply');
    Ember::sub_unsubscribe($sub);
};

Ember::conn_close($c);
stop_server($s);
done_testing;
