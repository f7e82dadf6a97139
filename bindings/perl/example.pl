#!/usr/bin/env perl
# example.pl: an embedded Ember broker as a test fixture, from Perl.
#
# The code under test, notify_shipped, is an ordinary NATS client over TCP: all it knows
# is a server URL. The test starts a broker inside perl on a free loopback port, hands
# the service that URL, and checks what arrived through an in-process subscription of
# the same broker. No nats-server to install, start or clean up; every test gets a
# fresh broker in a few milliseconds.
#
#   perl -Ibuild-swig/bindings/perl bindings/perl/example.pl
use strict;
use warnings;
use IO::Socket::INET;
use Test::More;
use Ember;

# ---- the code under test: a minimal NATS publisher over TCP
sub notify_shipped {
    my ($url, $order) = @_;
    my ($host, $port) = $url =~ m{^nats://([^:]+):(\d+)$} or die "bad url $url";
    my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Proto => 'tcp')
        or die "connect: $!";
    my $info = <$s>;                                  # INFO {...}
    my $payload = "order $order shipped";
    print $s qq(CONNECT {"verbose":false,"pedantic":false}\r\n),
             "PUB orders.shipped " . length($payload) . "\r\n$payload\r\n",
             "PING\r\n";                              # PONG: the PUB was handled
    my $pong = <$s>;
    close $s;
    $pong =~ s/\r?\n$//;
    return $pong;
}

# ---- the fixture: a broker on a free port, and an in-process connection to watch it
sub with_broker(&) {
    my ($test) = @_;
    my $o = Ember::server_options->new;
    $o->{port} = -1;
    $o->{host} = "127.0.0.1";
    my $srv = Ember::server_new($o);
    Ember::server_start($srv);
    Ember::server_ready_for_connections($srv, 5000) or die Ember::last_error();
    my $conn = Ember::conn_connect($srv, undef);
    my $sub = Ember::conn_subscribe($conn, "orders.>", undef, Ember::EMBER_DELIVER_POLL);
    my $ok = eval { $test->($srv, $sub); 1 };
    my $err = $@;
    Ember::conn_close($conn);
    Ember::server_free($srv);
    die $err unless $ok;
}

subtest 'the service announces a shipped order' => sub {
    with_broker {
        my ($srv, $sub) = @_;
        is(notify_shipped(Ember::server_client_url($srv), 42), 'PONG', 'published');
        my $m = Ember::sub_next_msg($sub, 2000);
        is(Ember::msg_subject($m), 'orders.shipped', 'subject');
        is(Ember::msg_data($m), 'order 42 shipped', 'payload');
    };
};

subtest 'nothing is published when the service is not called' => sub {
    with_broker {
        my ($srv, $sub) = @_;
        ok(!eval { Ember::sub_next_msg($sub, 50); 1 }, 'no message');
        like($@, qr/\(ETIMEDOUT\)/, 'timed out');
    };
};

done_testing;
