#!/usr/bin/env bash
# Samples the VmRSS of a process and writes the largest value seen, in KiB, to a file.
#
#   rss-peak.sh PID OUT [INTERVAL_SECONDS=0.02] [MAX_SECONDS=3600]
#
# Stops on SIGTERM, when the process exits, or after MAX_SECONDS, and writes OUT then.
# run.sh uses it instead of VmHWM alone because the server's start-up (an argon2 warm-up of
# ~19 MiB) already sets VmHWM before any load arrives.
pid=$1 out=$2 interval=${3:-0.02} max_seconds=${4:-3600}
peak=0
finish() {
    echo "$peak" >"$out"
    exit 0
}
trap finish TERM INT
end=$((SECONDS + max_seconds))
while ((SECONDS < end)); do
    rss=""
    {
        while read -r key value _; do
            if [[ $key == VmRSS: ]]; then
                rss=$value
                break
            fi
        done
    } 2>/dev/null <"/proc/$pid/status" || break
    [[ -n $rss ]] || break
    ((rss > peak)) && peak=$rss
    # In the background so that SIGTERM is handled at once, not after the sleep.
    sleep "$interval" &
    wait $!
done
finish
