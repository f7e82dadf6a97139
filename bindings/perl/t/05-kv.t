use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use EmberTest;
use Ember;

my $s = start_server(jetstream => 1);
my $c = Ember::conn_connect($s, undef);

sub bucket {
    my ($name, $history) = @_;
    my $cfg = Ember::kv_config->new;
    $cfg->{bucket} = $name;
    $cfg->{history} = $history // 1;
    $cfg->{storage} = Ember::EMBER_STORAGE_MEMORY;
    return Ember::kv_bucket_create($c, $cfg);
}

subtest 'put returns the revision, get the entry' => sub {
    my $kv = bucket("settings", 5);
    my $r1 = Ember::kv_put($kv, "theme", "dark");
    my $r2 = Ember::kv_put($kv, "theme", "light");
    cmp_ok($r2, '>', $r1, 'revisions grow');
    my $e = Ember::kv_get($kv, "theme");
    isa_ok($e, 'Ember::kv_entry');
    is($e->{bucket}, 'settings', 'bucket');
    is($e->{key}, 'theme', 'key');
    is($e->{value}, 'light', 'value');
    is($e->{revision}, $r2, 'revision');
    is($e->{op}, Ember::EMBER_KV_PUT, 'op');
    cmp_ok($e->{created_ns}, '>', 0, 'created');
    is(Ember::kv_get_revision($kv, "theme", $r1)->{value}, 'dark', 'an older revision');
    Ember::kv_put($kv, "blob", "\0\x01\xff");
    is(Ember::kv_get($kv, "blob")->{value}, "\0\x01\xff", 'binary-safe');
    Ember::kv_close($kv);
};

subtest 'errors: missing key, invalid key' => sub {
    my $kv = bucket("errs");
    is(error_code { Ember::kv_get($kv, "nobody") }, 'ENOTFOUND', 'missing');
    like($@, qr/^ember: /, 'message');
    is(error_code { Ember::kv_put($kv, $_, "x") }, 'EINVAL', "invalid key '$_'")
        for ("bad key", ".lead", "trail.", "a*");
    Ember::kv_close($kv);
};

subtest 'update is a compare-and-set; create only for a new key' => sub {
    my $kv = bucket("cas");
    my $r1 = Ember::kv_put($kv, "score", "10");
    my $r2 = Ember::kv_update($kv, "score", "11", $r1);
    cmp_ok($r2, '>', $r1, 'update');
    is(error_code { Ember::kv_update($kv, "score", "99", $r1) }, 'EWRONGSEQ', 'stale revision');
    is(Ember::kv_get($kv, "score")->{value}, '11', 'value kept');
    Ember::kv_create($kv, "lock", "me");
    is(error_code { Ember::kv_create($kv, "lock", "you") }, 'EWRONGSEQ', 'create existing');
    Ember::kv_delete($kv, "lock");
    ok(Ember::kv_create($kv, "lock", "you"), 'create after delete');
    Ember::kv_close($kv);
};

subtest 'keys, history, delete, purge' => sub {
    my $kv = bucket("k", 5);
    is_deeply([Ember::kv_keys($kv)], [], 'empty');
    Ember::kv_put($kv, $_, "1") for qw(b a c.d gone);
    Ember::kv_delete($kv, "gone");
    is_deeply([Ember::kv_keys($kv)], [qw(a b c.d)], 'sorted, without deleted keys');
    Ember::kv_put($kv, "h", $_) for 1 .. 2;
    Ember::kv_delete($kv, "h");
    my @h = Ember::kv_history($kv, "h");
    is_deeply([map { $_->{op} } @h], [Ember::EMBER_KV_PUT, Ember::EMBER_KV_PUT, Ember::EMBER_KV_DEL], 'history');
    is_deeply([map { $_->{value} } @h[0, 1]], [1, 2], 'history values');
    is(error_code { Ember::kv_get($kv, "h") }, 'ENOTFOUND', 'deleted');
    Ember::kv_purge($kv, "h");
    is(scalar(my @p = Ember::kv_history($kv, "h")), 1, 'purge leaves one marker');
    is(error_code { Ember::kv_history($kv, "never") }, 'ENOTFOUND', 'no history');
    Ember::kv_close($kv);
};

subtest 'open and delete buckets' => sub {
    my $kv = bucket("shared");
    Ember::kv_put($kv, "x", "1");
    my $kv2 = Ember::kv_bucket_open($c, "shared");
    is(Ember::kv_get($kv2, "x")->{value}, '1', 'opened');
    Ember::kv_close($_) for $kv, $kv2;
    Ember::kv_bucket_delete($c, "shared");
    is(error_code { Ember::kv_bucket_open($c, "shared") }, 'ENOTFOUND', 'deleted');
    is(error_code { Ember::kv_bucket_open($c, "bad name") }, 'EINVAL', 'bad name');
};

subtest 'without JetStream' => sub {
    my $s2 = start_server();
    my $c2 = Ember::conn_connect($s2, undef);
    is(error_code { Ember::kv_bucket_open($c2, "x") }, 'ESTATE', 'ESTATE');
    Ember::conn_close($c2);
    stop_server($s2);
};

Ember::conn_close($c);
stop_server($s);
done_testing;
