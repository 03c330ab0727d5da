#!/usr/bin/perl
# goipc.pl: a test-only stand-in for a Go program using go-ipc's System V queues (mq v0.1.0),
# for the specs that check mq meets such a program on one name (no Go toolchain here).
# It does exactly what go-ipc does, and nothing more careful:
#   key of a name: os.Create("$TMPDIR/name") (O_RDWR|O_CREAT|O_TRUNC, 0666, no O_EXCL, follows
#                  a symlink), close, stat, key = (st_ino & 0xffff) | ((st_dev & 0xff) << 16)
#   New:     msgget(key, perm|IPC_CREAT|IPC_EXCL)
#   Open:    msgget(key, 0), after the same os.Create
#   Destroy: Open (a queue that is not there is success), msgctl(IPC_RMID), remove the key file
#   Send / Receive: message type 1 / any type
#
# Usage (each prints "ok [id key]" or "fail CODE reason" and exits 0 when ok):
#   goipc.pl create NAME [PERM]      goipc.pl open NAME        goipc.pl destroy NAME
#   goipc.pl send NAME DATA          goipc.pl recv NAME        (recv prints "ok DATA")
#   goipc.pl rounds LOG START BASE PERIOD ROUNDS
#       the race creator of spec/support/races.lua's protocol: wait for START ("T0 T1",
#       CLOCK_MONOTONIC seconds), then at T0 + k*PERIOD create BASE-k for each round k
#       (skipping rounds while more than a PERIOD late), logging "k<TAB>ok<TAB>id<TAB>key" or "k<TAB>fail<TAB>code<TAB>reason" to LOG, then "done".
use strict;
use warnings;
use Errno qw(EEXIST ENOENT EACCES EPERM);
use Fcntl qw(O_RDWR O_CREAT O_TRUNC);
use IPC::SysV qw(IPC_CREAT IPC_EXCL IPC_RMID IPC_NOWAIT);
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC);

sub path_of { my ($name) = @_; my $dir = $ENV{TMPDIR}; $dir = "/tmp" unless defined $dir && $dir ne ""; "$dir/$name" }

sub code_of {
  my ($err) = @_;
  return "exists" if $err == EEXIST;
  return "notfound" if $err == ENOENT;
  return "denied" if $err == EACCES || $err == EPERM;
  return "system";
}

# go-ipc's KeyForName: returns (key) or (undef, code, reason).
sub key_for_name {
  my $path = path_of($_[0]);
  sysopen(my $fh, $path, O_RDWR | O_CREAT | O_TRUNC, 0666) or return (undef, code_of($! + 0), "create: $!");
  close $fh;
  my @st = stat($path) or return (undef, code_of($! + 0), "stat: $!");
  return (($st[1] & 0xffff) | (($st[0] & 0xff) << 16));
}

sub create {
  my ($name, $perm) = @_;
  my ($key, $code, $why) = key_for_name($name);
  return (undef, $code, $why) unless defined $key;
  my $id = msgget($key, $perm | IPC_CREAT | IPC_EXCL);
  return (undef, code_of($! + 0), "msgget: $!") unless defined $id;
  return ($id, $key);
}

sub open_queue {
  my ($name) = @_;
  my ($key, $code, $why) = key_for_name($name);
  return (undef, $code, $why) unless defined $key;
  my $id = msgget($key, 0);
  return (undef, code_of($! + 0), "msgget: $!") unless defined $id;
  return ($id, $key);
}

# A queue that is not there is success, and then the key file Open created stays.
sub destroy {
  my ($name) = @_;
  my ($id, $code, $why) = open_queue($name);
  return (1) if !defined $id && $code eq "notfound";
  return (undef, $code, $why) unless defined $id;
  msgctl($id, IPC_RMID, 0) or return (undef, code_of($! + 0), "msgctl: $!");
  unlink(path_of($name)) or return (undef, code_of($! + 0), "remove: $!");
  return (1);
}

sub report {
  my @r = @_;
  if (defined $r[0]) { print join(" ", "ok", @r), "\n"; exit 0 }
  print "fail $r[1] $r[2]\n";
  exit 1;
}

my $cmd = shift @ARGV // "";
if ($cmd eq "create") {
  report(create($ARGV[0], defined $ARGV[1] ? oct($ARGV[1]) : 0600));
} elsif ($cmd eq "open") {
  report(open_queue($ARGV[0]));
} elsif ($cmd eq "destroy") {
  my @r = destroy($ARGV[0]);
  report(@r[0 .. 2]) unless defined $r[0];
  print "ok\n";
} elsif ($cmd eq "send") {
  my ($id, $code, $why) = open_queue($ARGV[0]);
  report(undef, $code, $why) unless defined $id;
  msgsnd($id, pack("l! a*", 1, $ARGV[1]), 0) or report(undef, code_of($! + 0), "msgsnd: $!");
  print "ok\n";
} elsif ($cmd eq "recv") {
  my ($id, $code, $why) = open_queue($ARGV[0]);
  report(undef, $code, $why) unless defined $id;
  my $buf;
  msgrcv($id, $buf, 65536, 0, IPC_NOWAIT) or report(undef, code_of($! + 0), "msgrcv: $!");
  my ($type, $data) = unpack("l! a*", $buf);
  print "ok $data\n";
} elsif ($cmd eq "rounds") {
  my ($log, $start, $base, $period, $rounds) = @ARGV;
  open(my $out, ">", $log) or die "$log: $!";
  my ($t0, $give_up) = (undef, clock_gettime(CLOCK_MONOTONIC) + 60);
  until (defined $t0) {
    if (open(my $s, "<", $start)) { my $line = <$s>; close $s; ($t0) = split " ", $line if defined $line }
    die "no start file\n" if !defined $t0 && clock_gettime(CLOCK_MONOTONIC) > $give_up;
    Time::HiRes::sleep(0.001) unless defined $t0;
  }
  for my $k (0 .. $rounds - 1) {
    my $late = clock_gettime(CLOCK_MONOTONIC) - ($t0 + $k * $period);
    Time::HiRes::sleep(-$late) if $late < 0;
    next if $late > $period;        # more than a round late: skip until back on the clock
    my @r = create("$base-$k", 0600);
    if (defined $r[0]) { print $out join("\t", $k, "ok", $r[0], $r[1]), "\n" }
    else { print $out join("\t", $k, "fail", $r[1], $r[2]), "\n" }
  }
  print $out "done\n";
  close $out or die "$log: $!";
} else {
  print STDERR "usage: goipc.pl create|open|destroy|send|recv|rounds ...\n";
  exit 2;
}
