# The default member program of the process backend: a TCP server on the member's own loopback
# address (FLEETBOX_IP:FLEETBOX_PORT) that greets each connection with "fleetbox <name>" and
# echoes what it is sent. Perl (Essential in Debian) instead of Node: ~8 MiB and ~20 ms a
# member instead of ~42 MiB and ~100 ms, which is what a cluster of 100 members costs.
# One process, non-blocking, with at most 1 MiB waiting per connection (a peer that does not
# read stops being read). Output: "<name> listening on <ip>:<port>", "<name> stopping on SIGTERM".
use strict; use warnings; use IO::Socket::INET; use IO::Select; use Errno qw(EAGAIN EINTR);
my $n = $ENV{FLEETBOX_NAME} // 'member'; my $h = $ENV{FLEETBOX_IP} // '127.0.0.1'; my $p = $ENV{FLEETBOX_PORT} // 7000;
$| = 1; $SIG{PIPE} = 'IGNORE';
my $l = IO::Socket::INET->new(LocalAddr => $h, LocalPort => $p, Listen => 511, ReuseAddr => 1, Blocking => 0)
  or do { my $e = $@ || "$!"; $e =~ s/^IO::Socket::INET: //; print STDERR "$n: $e\n"; exit 1 };
print "$n listening on $h:$p\n";
for my $s (qw(TERM INT)) { $SIG{$s} = sub { print "$n stopping on SIG$s\n"; exit 0 } }
my $r = IO::Select->new($l); my $w = IO::Select->new; my (%out, %eof);
sub done { my $fh = shift; $r->remove($fh); $w->remove($fh); delete $out{$fh}; delete $eof{$fh}; close $fh }
while (1) {
  my ($rr, $ww) = IO::Select->select($r, $w, undef);
  for my $fh (@{ $rr || [] }) {
    if ($fh == $l) {
      while (my $c = $l->accept) { $c->blocking(0); $r->add($c); $out{$c} = "fleetbox $n\n"; $w->add($c) }
      next;
    }
    next unless exists $out{$fh};
    my $k = sysread($fh, my $buf, 65536);
    if ($k) { $out{$fh} .= $buf; $w->add($fh); $r->remove($fh) if length $out{$fh} > 1 << 20 }
    elsif (defined $k || ($! != EAGAIN && $! != EINTR)) { $r->remove($fh); $eof{$fh} = 1; done($fh) unless length $out{$fh} }
  }
  for my $fh (@{ $ww || [] }) {
    next unless exists $out{$fh};
    my $k = syswrite($fh, $out{$fh});
    if (!defined $k) { done($fh) if $! != EAGAIN && $! != EINTR; next }
    substr($out{$fh}, 0, $k) = '';
    $r->add($fh) if !$eof{$fh} && length $out{$fh} <= 1 << 20;
    if (!length $out{$fh}) { $w->remove($fh); done($fh) if $eof{$fh} }
  }
}
