#!/bin/sh
# Regenerates tests/data/libpcap-testrun-en10mb.txt: the filter expressions of libpcap's
# own test suite (testprogs/TESTrun in the-tcpdump-group/libpcap) that apply to Ethernet
# (DLT_EN10MB), one per line, deduplicated, in TESTrun's order. Not needed to build or
# test pfc: the generated file is vendored.
#
# Usage: [LIBPCAP_REV=commit] scripts/libpcap-testrun-corpus.sh LIBPCAP_CHECKOUT > tests/data/libpcap-testrun-en10mb.txt
#
# It runs TESTrun's own Perl (so its generated test lists are expanded exactly) up to the
# point where TESTrun would start running tests, and prints instead:
#   - the aliases of every "filter accept" block whose DLT is EN10MB;
#   - the expression of every "filter apply" block whose capture is Ethernet;
#   - the expression of every "filter reject" test whose DLT is EN10MB.
# Which of them libpcap 1.10 accepts is decided by libpcap itself when the test runs.
set -eu
checkout=${1:?usage: $0 LIBPCAP_CHECKOUT}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$checkout"/testprogs/TESTrun "$checkout"/testprogs/TESTlib.pm "$checkout"/testprogs/TESTst.pm \
    "$checkout"/testprogs/TESTmt.pm "$work"/
rev=${LIBPCAP_REV:-$(git -C "$checkout" rev-parse HEAD 2>/dev/null || echo unknown)}
# Replace the test runner with a dump of the test lists.
perl -0pi -e 's/\nmy \@ready_to_run;\n.*\z/\nrequire "\$FindBin::RealBin\/dump.pl";\n/s' "$work"/TESTrun
cat > "$work"/dump.pl <<'PERL'
use strict;
my $captures = $ENV{LIBPCAP_TESTS};
sub linktype {
    my $name = shift;
    my $file = -e "$captures/filter/$name" ? "$captures/filter/$name" : "$captures/$name";
    open my $fh, '<:raw', $file or return -1;
    my $head;
    read $fh, $head, 24;
    close $fh;
    my $magic = unpack 'V', $head;
    return unpack('V', substr $head, 20, 4) if $magic == 0xa1b2c3d4 || $magic == 0xa1b23c4d;
    return unpack('N', substr $head, 20, 4) if $magic == 0xd4c3b2a1 || $magic == 0x4d3cb2a1;
    return -1;
}
my (%seen, @out);
sub emit { my ($source, $e) = @_; return if $e =~ /[\n\t]/ || $seen{$e}++; push @out, "$source\t$e"; }
foreach my $t (@main::filter_accept_blocks) {
    next unless ($t->{DLT} // '') eq 'EN10MB';
    emit 'accept', $_ foreach @{$t->{aliases}};
}
foreach my $t (@main::filter_apply_blocks) {
    emit 'apply', $t->{expr} if defined $t->{expr} && linktype($t->{savefile}) == 1;
}
foreach my $t (@main::filter_reject_tests) {
    emit 'reject', $t->{expr} if defined $t->{expr} && ($t->{DLT} // '') eq 'EN10MB';
}
print "$_\n" foreach @out;
exit 0;
PERL
# The lists are file-scoped `my` variables: make them visible to dump.pl.
perl -pi -e 's/^my (\@filter_(accept_blocks|apply_blocks|reject_tests)) = /our $1 = /' "$work"/TESTrun
cat <<HEADER
# libpcap's filter test expressions for Ethernet (DLT_EN10MB), one per line as
# SOURCE<TAB>EXPRESSION (SOURCE: TESTrun's accept, apply or reject list), extracted from
# testprogs/TESTrun of https://github.com/the-tcpdump-group/libpcap at $rev
# by scripts/libpcap-testrun-corpus.sh. Used by tests/pcap_libpcap.rs.
#
HEADER
sed -n '3,27p' "$checkout"/testprogs/TESTrun
echo
cd "$work" && CONFIG_H=/dev/null LIBPCAP_TESTS="$checkout/tests" perl ./TESTrun
