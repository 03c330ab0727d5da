#!/usr/bin/perl
# Perl's core IPC::Msg running the benchmark's scenarios.
#   perl ipc_msg.pl pair|stream|pingpong SIZE N WARM
# Two-process scenarios fork a partner that shares the private queue (on CPU n
# when BENCH_PARTNER_CPU=n).
# Prints "queue <id> 0" and "result <what> <value>" lines for the driver.
use strict;
use warnings;
use IPC::SysV qw(IPC_PRIVATE IPC_CREAT S_IRUSR S_IWUSR);
use IPC::Msg;
use POSIX ();
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC);

my $MAXTEXT = 8192;
my ($mode, $size, $n, $warm) = @ARGV;
die "usage: $0 pair|stream|pingpong SIZE N WARM\n" unless defined $warm;

my $owner = $$;
my $q = IPC::Msg->new(IPC_PRIVATE, IPC_CREAT | S_IRUSR | S_IWUSR) or die "msgget: $!";
END { $q->remove if $q && $$ == $owner; }
$SIG{TERM} = $SIG{INT} = sub { $q->remove if $$ == $owner; POSIX::_exit(1) };
$| = 1;
print "queue ", $q->id, " 0\n";
$| = 0;

my $msg = 'x' x $size;

sub now_ns { return clock_gettime(CLOCK_MONOTONIC) * 1e9 }

# Nearest-rank percentile p (0..1) of a sorted list.
sub pct {
    my ($v, $p) = @_;
    my $k = POSIX::ceil($p * @$v);
    $k = 1 if $k < 1;
    return $v->[$k - 1];
}

sub partner {
    my ($body) = @_;
    STDOUT->flush;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $cpu = $ENV{BENCH_PARTNER_CPU};
        system("taskset -pc $cpu $$ >/dev/null") if defined $cpu && $cpu =~ /^\d+$/;
        $body->();    # returns early once the parent removed the queue
        POSIX::_exit(0);
    }
    return $pid;
}

sub pair {
    my $buf;
    for (1 .. $warm) { $q->snd(1, $msg); $q->rcv($buf, $MAXTEXT) }
    my $t0 = now_ns();
    for (1 .. $n) {
        $q->snd(1, $msg);
        $q->rcv($buf, $MAXTEXT);
    }
    my $dt = now_ns() - $t0;
    die "wrong message" unless $buf eq $msg;
    printf "result ns_per_pair %.6g\n", $dt / $n;
}

sub stream {
    my $pid = partner(sub {
        for (1 .. $n + $warm) { $q->snd(1, $msg) or return }
    });
    my $buf;
    for (1 .. $warm) { $q->rcv($buf, $MAXTEXT) }
    my $t0 = now_ns();
    for (1 .. $n) { $q->rcv($buf, $MAXTEXT) }
    my $dt = now_ns() - $t0;
    die "wrong message" unless $buf eq $msg;
    printf "result msgs_per_s %.6g\n", $n * 1e9 / $dt;
    waitpid $pid, 0;
}

sub pingpong {
    my $pid = partner(sub {
        my $b;
        for (1 .. $n + $warm) {
            defined $q->rcv($b, $MAXTEXT, 1) or return;
            $q->snd(2, $msg) or return;
        }
    });
    my ($buf, @rtt);
    for (1 .. $warm) { $q->snd(1, $msg); $q->rcv($buf, $MAXTEXT, 2) }
    for (1 .. $n) {
        my $t = now_ns();
        $q->snd(1, $msg);
        $q->rcv($buf, $MAXTEXT, 2);
        push @rtt, now_ns() - $t;
    }
    @rtt = sort { $a <=> $b } @rtt;
    printf "result rtt_median_ns %.6g\n", pct(\@rtt, 0.5);
    printf "result rtt_p99_ns %.6g\n", pct(\@rtt, 0.99);
    waitpid $pid, 0;
}

my %run = (pair => \&pair, stream => \&stream, pingpong => \&pingpong);
($run{$mode} or die "unknown mode $mode\n")->();
