# Shared by the Perl tests: embedded brokers as fixtures.
package EmberTest;
use strict;
use warnings;
use Exporter 'import';
use File::Temp qw(tempdir);
use Ember;

our @EXPORT = qw(start_server stop_server error_code);

# A started broker: in-process only, or on a free loopback port with tcp => 1;
# jetstream => 1 gives it a temporary store directory (removed at exit).
sub start_server {
    my %o = @_;
    my $opts = Ember::server_options->new;
    if ($o{tcp}) {
        $opts->{port} = -1;
        $opts->{host} = "127.0.0.1";
    } else {
        $opts->{dont_listen} = 1;
    }
    if ($o{jetstream}) {
        $opts->{jetstream} = 1;
        $opts->{store_dir} = $o{store_dir} // tempdir("ember-js-XXXXXX", TMPDIR => 1, CLEANUP => 1);
    }
    my $srv = Ember::server_new($opts);
    Ember::server_start($srv);
    Ember::server_ready_for_connections($srv, 5000)
        or die "server not ready: " . Ember::last_error();
    return $srv;
}

sub stop_server { Ember::server_free($_[0]) }

# The status name of the exception a block dies with ("EWRONGSEQ"), or "ok".
sub error_code(&) {
    my ($code) = @_;
    return "ok" if eval { $code->(); 1 };
    return $@ =~ /\((E[A-Z]+)\) at / ? $1 : "unexpected error: $@";
}

1;
