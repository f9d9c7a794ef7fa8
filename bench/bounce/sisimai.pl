# bench/bounce/sisimai.pl -- Sisimai (Perl, Debian's libsisimai-perl) over the same .eml files
# as run.py, in memory: each message is given to Sisimai->make as a string (an mbox of one), as
# many passes as fit in the given CPU seconds.
# usage: perl sisimai.pl SECONDS FILE...   prints: messages msgs_per_cpu_s msgs_per_wall_s records
use strict;
use warnings;
use Sisimai;
use Time::HiRes qw(clock_gettime CLOCK_PROCESS_CPUTIME_ID CLOCK_MONOTONIC);

my ($seconds, @files) = @ARGV;
my @msgs;
for my $path (@files) {
    open(my $fh, '<:raw', $path) or die "$path: $!";
    local $/;
    my $data = <$fh>;
    close $fh;
    # Sisimai reads an mbox; a lone message gets the "From " line an mbox would give it
    $data = "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n" . $data unless $data =~ /\AFrom /;
    push @msgs, $data;
}
my ($done, $records) = (0, 0);
my $cpu0 = clock_gettime(CLOCK_PROCESS_CPUTIME_ID);
my $wall0 = clock_gettime(CLOCK_MONOTONIC);
my $cpu = 0;
while ($cpu < $seconds) {
    for my $m (@msgs) {
        my $copy = $m;    # Sisimai may consume the string it is given
        my $got = Sisimai->make(\$copy);
        $records += $got ? scalar @$got : 0;
    }
    $done += @msgs;
    $cpu = clock_gettime(CLOCK_PROCESS_CPUTIME_ID) - $cpu0;
}
my $wall = clock_gettime(CLOCK_MONOTONIC) - $wall0;
printf "%d %.1f %.1f %d\n", $done, $done / $cpu, $done / $wall, $records;
