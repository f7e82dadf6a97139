use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use EmberTest;
use Ember;

my $s = start_server(jetstream => 1);
my $c = Ember::conn_connect($s, undef);

my $cfg = Ember::obj_config->new;
$cfg->{bucket} = "files";
$cfg->{chunk_size} = 1000;
my $obj = Ember::obj_bucket_create($c, $cfg);

subtest 'put returns the info, get the data and the info' => sub {
    my $data = join "", map { chr($_ % 256) } 0 .. 4999;
    my $info = Ember::obj_put($obj, "dir/a.bin", $data, undef);
    isa_ok($info, 'Ember::obj_info');
    is($info->{name}, 'dir/a.bin', 'name');
    is($info->{size}, 5000, 'size');
    is($info->{chunks}, 5, 'chunks');
    like($info->{digest}, qr/^SHA-256=[A-Za-z0-9_-]{43}=$/, 'digest');
    ok(!$info->{deleted}, 'not deleted');
    my ($got, $gi) = Ember::obj_get($obj, "dir/a.bin");
    is($got, $data, 'binary-safe data');
    is($gi->{revision}, $info->{revision}, 'same revision');
    is(Ember::obj_get_info($obj, "dir/a.bin")->{digest}, $info->{digest}, 'info');
    Ember::obj_put($obj, "e", "", undef);
    is((Ember::obj_get($obj, "e"))[0], '', 'empty object');
};

subtest 'streaming' => sub {
    my $w = Ember::obj_writer_open($obj, "streamed", undef);
    Ember::obj_writer_write($w, "x" x 1500) for 1 .. 3;
    my $info = Ember::obj_writer_commit($w);
    is($info->{size}, 4500, 'size');
    my $r = Ember::obj_reader_open($obj, "streamed");
    is(Ember::obj_reader_info($r)->{size}, 4500, 'reader info');
    my ($all, $piece) = ("");
    $all .= $piece while length($piece = Ember::obj_reader_read($r, 700));
    Ember::obj_reader_close($r);
    is($all, "x" x 4500, 'read back');
    my $w2 = Ember::obj_writer_open($obj, "aborted", undef);
    Ember::obj_writer_write($w2, "y" x 3000);
    Ember::obj_writer_abort($w2);
    is(error_code { Ember::obj_get_info($obj, "aborted") }, 'ENOTFOUND', 'aborted');
};

subtest 'list, delete, errors' => sub {
    is_deeply([Ember::obj_list($obj)], ['dir/a.bin', 'e', 'streamed'], 'sorted names');
    Ember::obj_delete($obj, "e");
    is_deeply([Ember::obj_list($obj)], ['dir/a.bin', 'streamed'], 'without deleted');
    is(error_code { Ember::obj_get($obj, "e") }, 'ENOTFOUND', 'deleted');
    ok(Ember::obj_get_info($obj, "e")->{deleted}, 'deleted marker');
    is(error_code { Ember::obj_put($obj, "", "x", undef) }, 'EINVAL', 'empty name');
    is(error_code { Ember::obj_bucket_open($c, "nope") }, 'ENOTFOUND', 'missing bucket');
    my $po = Ember::obj_put_options->new;
    $po->{description} = "described";
    is(Ember::obj_put($obj, "d", "1", $po)->{description}, 'described', 'put options');
};

Ember::obj_close($obj);
Ember::obj_bucket_delete($c, "files");
is(error_code { Ember::obj_bucket_open($c, "files") }, 'ENOTFOUND', 'bucket deleted');
Ember::conn_close($c);
stop_server($s);
done_testing;
