use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use EmberTest;
use Ember;

my $s = start_server();
my $c = Ember::conn_connect($s, undef);
my $sub = Ember::conn_subscribe($c, "h", undef, Ember::EMBER_DELIVER_POLL);

subtest 'add, set, delete; get, values, every field' => sub {
    my $m = Ember::msg_new("h", undef, "body");
    Ember::msg_header_add($m, "X-Many", $_) for qw(a b);
    Ember::msg_header_add($m, "X-One", "1");
    Ember::msg_header_add($m, "X-Gone", "z");
    Ember::msg_header_set($m, "X-One", "2");
    Ember::msg_header_delete($m, "X-Gone");
    Ember::conn_publish_msg($c, $m);
    my $got = Ember::sub_next_msg($sub, 1000);
    is(Ember::msg_data($got), 'body', 'data');
    is(Ember::msg_header_get($got, "X-Many"), 'a', 'first value');
    is_deeply([Ember::msg_header_values($got, "X-Many")], [qw(a b)], 'all values');
    is_deeply([Ember::msg_headers($got)], [qw(X-Many a X-Many b X-One 2)], 'every field');
    is(Ember::msg_header_get($got, "x-one"), undef, 'case-sensitive');
    is(Ember::msg_header_get($got, "X-Gone"), undef, 'deleted');
    is(Ember::msg_status($got), 0, 'no status');
};

subtest 'no headers; the raw block' => sub {
    Ember::conn_publish($c, "h", undef, "plain");
    my $got = Ember::sub_next_msg($sub, 1000);
    is_deeply([Ember::msg_headers($got)], [], 'none');
    is_deeply([Ember::msg_header_values($got, "X")], [], 'no values');
    my $m = Ember::msg_new("h", undef, "x");
    Ember::msg_header_add($m, "K", "v");
    Ember::conn_publish_msg($c, $m);
    is(Ember::msg_headers_raw(Ember::sub_next_msg($sub, 1000)), "NATS/1.0\r\nK: v\r\n\r\n", 'raw');
};

subtest 'invalid keys' => sub {
    my $m = Ember::msg_new("h", undef, "x");
    is(error_code { Ember::msg_header_add($m, "bad key", "v") }, 'EINVAL', 'space in key');
};

Ember::conn_close($c);
stop_server($s);
done_testing;
