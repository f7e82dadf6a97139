use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use EmberTest;
use Ember;

my $s = start_server(jetstream => 1);
my $c = Ember::conn_connect($s, undef);

subtest 'stream, publish, get, pull consumer' => sub {
    my $cfg = Ember::stream_config->new;
    $cfg->{name} = "ORDERS";
    $cfg->{storage} = Ember::EMBER_STORAGE_MEMORY;
    $cfg->set_subjects("orders.>, audit.*");
    Ember::js_stream_create($c, $cfg);
    my @seqs = map { Ember::js_publish($c, Ember::msg_new("orders.new", undef, $_)) } qw(a b c);
    is_deeply(\@seqs, [1, 2, 3], 'sequences');
    is(Ember::msg_data(Ember::js_get($c, "ORDERS", 2)), 'b', 'get');
    is(Ember::msg_data(Ember::js_get_last($c, "ORDERS", "orders.new")), 'c', 'get last');
    my $cc = Ember::consumer_config->new;
    $cc->{durable_name} = "worker";
    is(Ember::js_consumer_create($c, "ORDERS", $cc), 'worker', 'consumer');
    my @msgs = Ember::js_fetch($c, "ORDERS", "worker", 10, 1000);
    is_deeply([map { Ember::msg_data($_) } @msgs], [qw(a b c)], 'fetched');
    my $meta = Ember::js_meta->new;
    Ember::js_msg_meta($msgs[1], $meta);
    is($meta->{stream_seq}, 2, 'stream_seq');
    is($meta->{num_delivered}, 1, 'num_delivered');
    Ember::js_ack($c, $_) for @msgs;
    my $ci = Ember::consumer_info->new;
    Ember::js_consumer_info($c, "ORDERS", "worker", $ci);
    is($ci->{num_ack_pending}, 0, 'all acked');
    is_deeply([Ember::js_fetch($c, "ORDERS", "worker", 10, 50)], [], 'nothing left');
    my $si = Ember::stream_info->new;
    Ember::js_stream_info($c, "ORDERS", $si);
    is($si->{msgs}, 3, 'msgs');
    is($si->{last_seq}, 3, 'last_seq');
};

subtest 'errors' => sub {
    is(error_code { Ember::js_publish($c, Ember::msg_new("nowhere", undef, "x")) }, 'ENOTFOUND',
       'no stream for the subject');
    is(error_code { Ember::js_get($c, "ORDERS", 99) }, 'ENOTFOUND', 'missing message');
    my $m = Ember::msg_new("orders.x", undef, "x");
    Ember::msg_header_set($m, "Nats-Expected-Last-Sequence", "1");
    is(error_code { Ember::js_publish($c, $m) }, 'EWRONGSEQ', 'expectation');
    ok(!eval { Ember::js_fetch($c, "ORDERS", "worker", 0, 0); 1 }, 'batch 0 dies');
};

subtest 'purge and delete' => sub {
    is(Ember::js_stream_purge($c, "ORDERS", undef), 3, 'purged');
    Ember::js_stream_delete($c, "ORDERS");
    is(error_code { Ember::js_stream_info($c, "ORDERS", Ember::stream_info->new) }, 'ENOTFOUND',
       'deleted');
};

Ember::conn_close($c);
stop_server($s);
done_testing;
