use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use EmberTest;
use Ember;

subtest 'starts without a listener and stops' => sub {
    my $o = Ember::server_options->new;
    $o->{dont_listen} = 1;
    $o->{server_name} = "perl-test";
    my $s = Ember::server_new($o);
    Ember::server_start($s);
    ok(Ember::server_ready_for_connections($s, 5000), 'ready');
    is(Ember::server_name($s), 'perl-test', 'name');
    is(Ember::server_port($s), 0, 'no port');
    is(Ember::server_client_url($s), undef, 'no url');
    Ember::server_shutdown($s);
    Ember::server_shutdown($s);
    Ember::server_free($s);
};

subtest 'listens on a free port with port -1' => sub {
    my $s = start_server(tcp => 1);
    my $url = Ember::server_client_url($s);
    like($url, qr{^nats://127\.0\.0\.1:\d+$}, 'url');
    is($url, "nats://127.0.0.1:" . Ember::server_port($s), 'url has the port');
    stop_server($s);
};

subtest 'options have nats-server defaults' => sub {
    my $o = Ember::server_options->new;
    is($o->{port}, 0, 'port');
    is($o->{host}, '0.0.0.0', 'host');
    is($o->{max_payload}, 1048576, 'max_payload');
    is($o->{size} > 0, 1, 'size set by init');
};

subtest 'invalid options die with EINVAL and the reason' => sub {
    my $o = Ember::server_options->new;
    $o->{dont_listen} = 1;
    $o->{max_payload} = 0;
    ok(!eval { Ember::server_new($o); 1 }, 'dies');
    like($@, qr/^ember: invalid max_payload 0.* \(EINVAL\)/, 'message');
    is(Ember::last_status(), Ember::EMBER_EINVAL, 'last_status');
    is(Ember::status_name(Ember::last_status()), 'EINVAL', 'status_name');
};

subtest 'stats and shutdown' => sub {
    my $s = start_server();
    my $c = Ember::conn_connect($s, undef);
    Ember::conn_subscribe($c, "x", undef, Ember::EMBER_DELIVER_POLL);
    Ember::conn_publish($c, "x", undef, "hello");
    my $st = Ember::server_stats->new;
    Ember::server_get_stats($s, $st);
    is($st->{connections}, 1, 'connections');
    is($st->{subscriptions}, 1, 'subscriptions');
    is($st->{in_msgs}, 1, 'in_msgs');
    Ember::server_shutdown($s);
    ok(Ember::conn_is_closed($c), 'connection closed by shutdown');
    is(error_code { Ember::conn_publish($c, "x", undef, "y") }, 'ECLOSED', 'publish after shutdown');
    Ember::conn_close($c);
    stop_server($s);
};

is(Ember::version(), '0.1.0', 'version');
is(Ember::strerror(Ember::EMBER_ENOTFOUND), 'not found', 'strerror');

done_testing;
