#!/usr/bin/env bash
# Media benchmarks for Shuyuan, each against a baseline measured in the same run:
#   1. ranged streaming of one object from the local store (sequential whole-file downloads,
#      and concurrent clients asking random aligned 1 MiB ranges) against nginx serving the
#      very same file (a hard link to the stored object) with sendfile;
#   2. the server's peak RSS above idle while streaming and while uploading, and whether it
#      grows with the size of the upload;
#   3. raw PUT upload throughput against dd copying the same bytes to the same disk.
# bench/README.md explains the method. Usage: bash bench/media/run.sh   (QUICK=1 for a smoke run)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
START_SECONDS=$SECONDS

say() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() {
    say "ERROR: $*"
    exit 1
}

# "1G", "256M", "64MiB", "4096K" or plain bytes; suffixes are binary.
to_bytes() {
    local text=${1^^} number unit
    text=${text%IB}
    text=${text%B}
    [[ $text =~ ^([0-9]+)([KMGT]?)$ ]] || die "not a size: $1"
    number=${BASH_REMATCH[1]}
    unit=${BASH_REMATCH[2]}
    case $unit in
        K) echo $((number << 10)) ;;
        M) echo $((number << 20)) ;;
        G) echo $((number << 30)) ;;
        T) echo $((number << 40)) ;;
        *) echo "$number" ;;
    esac
}

human() { # bytes -> "1 GiB", "256 MiB", "1.5 GiB"
    awk -v b="$1" 'BEGIN {
        split("B KiB MiB GiB TiB", u, " "); i = 1
        while (b >= 1024 && i < 5) { b /= 1024; i++ }
        if (b == int(b)) printf "%d %s", b, u[i]; else printf "%.1f %s", b, u[i] }'
}

# ---------------------------------------------------------------- settings
if [[ ${QUICK:-0} == 1 ]]; then
    d_stream=64M d_upload=128M d_small=16M d_large=256M d_rounds=1 d_up_rounds=1 d_seconds=3 d_warmup=1 d_seq=1
else
    d_stream=1G d_upload=2G d_small=256M d_large=4G d_rounds=3 d_up_rounds=5 d_seconds=20 d_warmup=2 d_seq=3
fi
STREAM_BYTES=$(to_bytes "${BENCH_STREAM_SIZE:-$d_stream}")  # the streamed object
UPLOAD_BYTES=$(to_bytes "${BENCH_UPLOAD_SIZE:-$d_upload}")  # upload throughput and RSS
RSS_SMALL=$(to_bytes "${BENCH_RSS_SMALL:-$d_small}")        # RSS growth: small upload
RSS_LARGE=$(to_bytes "${BENCH_RSS_LARGE:-$d_large}")        # RSS growth: large upload
RANGE_BYTES=$(to_bytes "${BENCH_RANGE:-1M}")                 # one random range
CLIENTS=${BENCH_CLIENTS:-64}                                 # concurrent range clients
ROUNDS=${BENCH_ROUNDS:-$d_rounds}                            # alternated streaming rounds
UPLOAD_ROUNDS=${BENCH_UPLOAD_ROUNDS:-$d_up_rounds}           # alternated upload/dd rounds
RANDOM_SECONDS=${BENCH_SECONDS:-$d_seconds}                  # length of one random-range run
WARMUP_SECONDS=${BENCH_WARMUP:-$d_warmup}                    # unrecorded run before it
SEQ_DOWNLOADS=${BENCH_SEQ_DOWNLOADS:-$d_seq}                 # whole-file downloads per run
UPLOAD_PAUSE=${BENCH_UPLOAD_PAUSE:-5}                        # seconds before each upload and dd
UPLOAD_MEMORY=${BENCH_UPLOAD_MEMORY:-cold,warm}              # states to measure: see prepare_memory
SERVER_CPU=${BENCH_SERVER_CPU:-1}                            # core for shuyuan and nginx streaming
CLIENT_CPU=${BENCH_CLIENT_CPU:-0}                            # core for wrk, curl and the upload client
UPLOAD_CPUS=${BENCH_UPLOAD_CPUS:-all}                        # cores for shuyuan uploading and dd
UPLOAD_CLIENT=${BENCH_UPLOAD_CLIENT:-sendfile}               # sendfile (put-sendfile.py) or curl
TMP_PARENT=${BENCH_TMPDIR:-${TMPDIR:-/tmp}}                  # where data and test files go
for n in CLIENTS ROUNDS UPLOAD_ROUNDS UPLOAD_PAUSE RANDOM_SECONDS WARMUP_SECONDS SEQ_DOWNLOADS SERVER_CPU CLIENT_CPU; do
    [[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a whole number, not '${!n}'"
done
((ROUNDS >= 1 && UPLOAD_ROUNDS >= 1 && RANDOM_SECONDS >= 1 && SEQ_DOWNLOADS >= 1 && CLIENTS >= 1)) ||
    die "rounds, seconds, downloads and clients must be at least 1"
[[ $UPLOAD_CLIENT =~ ^(sendfile|curl)$ ]] || die "BENCH_UPLOAD_CLIENT must be sendfile or curl, not '$UPLOAD_CLIENT'"
[[ $UPLOAD_CPUS == all || $UPLOAD_CPUS =~ ^[0-9][0-9,-]*$ ]] || die "BENCH_UPLOAD_CPUS must be all or a taskset list, not '$UPLOAD_CPUS'"
[[ $UPLOAD_MEMORY =~ ^(cold|warm)(,(cold|warm))*$ ]] || die "BENCH_UPLOAD_MEMORY must list cold and/or warm, not '$UPLOAD_MEMORY'"
((STREAM_BYTES >= RANGE_BYTES && RANGE_BYTES > 0)) || die "the streamed object is smaller than one range"

# Targets from the issue.
T_STREAM_RATIO=0.80  # shuyuan throughput >= 0.8 x nginx
T_P99_RATIO=2.00     # shuyuan p99 <= 2 x nginx
T_RSS_MIB=32         # peak RSS above idle < 32 MiB
T_GROWTH=1.10        # peak RSS, large upload / small upload <= 1.1
T_UPLOAD_RATIO=0.70  # upload >= 0.7 x dd

# ---------------------------------------------------------------- tools
need_packages=()
command -v wrk >/dev/null || need_packages+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need_packages+=(nginx)
command -v taskset >/dev/null || need_packages+=(util-linux)
command -v curl >/dev/null || need_packages+=(curl)
command -v jq >/dev/null || need_packages+=(jq)
[[ $UPLOAD_CLIENT != sendfile ]] || command -v python3 >/dev/null || need_packages+=(python3)
if ((${#need_packages[@]})); then
    say "installing ${need_packages[*]} (apt-get)"
    command -v apt-get >/dev/null || die "missing ${need_packages[*]} and no apt-get to install them"
    ((EUID == 0)) || die "missing ${need_packages[*]}; run as root or install them first"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${need_packages[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

CPUS=$(nproc --all)
((SERVER_CPU < CPUS && CLIENT_CPU < CPUS)) || die "cores $SERVER_CPU and $CLIENT_CPU: this machine has $CPUS"
((SERVER_CPU != CLIENT_CPU)) || say "warning: server and load generator share core $SERVER_CPU"
on_server_cpu() { taskset -c "$SERVER_CPU" "$@"; }
on_client_cpu() { taskset -c "$CLIENT_CPU" "$@"; }
# Uploads and dd run on every core unless told otherwise: the server hashes on one thread while
# it receives and writes on others, as dd leaves writeback to the kernel's threads.
upload_cpu_list() { if [[ $UPLOAD_CPUS == all ]]; then echo "0-$((CPUS - 1))"; else echo "$UPLOAD_CPUS"; fi; }
on_upload_cpus() { taskset -c "$(upload_cpu_list)" "$@"; }

if [[ -n ${BENCH_BIN:-} ]]; then
    BIN=$BENCH_BIN
else
    say "building shuyuan (cargo build --release)"
    (cd "$REPO" && cargo build --release --quiet)
    BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/shuyuan
    [[ $BIN = /* ]] || BIN=$REPO/$BIN
fi
[[ -x $BIN ]] || die "no server binary at $BIN"

# The servers get exactly the configuration below, whatever this shell exports.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^SHUYUAN_' || true)
unset RUST_LOG
export SHUYUAN_LOG__LEVEL=warn
export SHUYUAN_SERVER__SHUTDOWN_GRACE_SECONDS=2
max_upload=$((RSS_LARGE > UPLOAD_BYTES ? RSS_LARGE : UPLOAD_BYTES))
max_upload=$((max_upload > STREAM_BYTES ? max_upload : STREAM_BYTES))
export SHUYUAN_LIMITS__MAX_UPLOAD_BYTES=$((max_upload * 2 > (8 << 30) ? max_upload * 2 : (8 << 30)))

# ---------------------------------------------------------------- work dir and cleanup
mkdir -p "$TMP_PARENT"
need=$((STREAM_BYTES > UPLOAD_BYTES ? 2 * STREAM_BYTES : 2 * UPLOAD_BYTES))
need=$((need > 2 * RSS_LARGE ? need : 2 * RSS_LARGE))
need=$((need + (1 << 30)))
avail=$(df --output=avail -B1 "$TMP_PARENT" | tail -1 | tr -d ' ')
((avail > need)) || die "$TMP_PARENT has $(human "$avail") free; this run needs $(human "$need")"

WORK=$(mktemp -d "$TMP_PARENT/shuyuan-bench.XXXXXX")
PIDS=()

stop_pid() { # TERM, then KILL after 10 s; forget the pid
    local pid=$1 i
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    local kept=() p
    for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || kept+=("$p"); done
    PIDS=("${kept[@]}")
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local pid
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    if [[ -d $WORK ]]; then
        if ((rc != 0)) && [[ -f $WORK/shuyuan.log ]]; then
            say "last lines of the shuyuan log:"
            tail -n 20 "$WORK/shuyuan.log" >&2 || true
        fi
        rm -rf -- "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    local port i
    for ((i = 0; i < 200; i++)); do
        port=$((20000 + RANDOM % 30000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    die "found no free port"
}

wait_http() { # URL PID NAME: until URL answers 2xx, at most 30 s
    local url=$1 pid=$2 name=$3 i
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || die "$name exited during start-up"
        curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
        sleep 0.1
    done
    die "$name did not answer $url within 30 s"
}

kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; } # PID VmRSS|VmHWM
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# A fresh server for every measurement: VmHWM (the peak) cannot be reset.
SY_PID="" SY_URL=""
start_shuyuan() { # [CORES: a taskset list, default the server core]
    local port cores=${1:-$SERVER_CPU}
    port=$(free_port)
    (cd "$WORK" && SHUYUAN_SERVER__LISTEN="127.0.0.1:$port" exec taskset -c "$cores" "$BIN" serve) \
        >>"$WORK/shuyuan.log" 2>&1 &
    SY_PID=$!
    PIDS+=("$SY_PID")
    SY_URL="http://127.0.0.1:$port"
    wait_http "$SY_URL/healthz" "$SY_PID" shuyuan
}
stop_shuyuan() {
    stop_pid "$SY_PID"
    SY_PID=""
}

# Idle is measured once start-up work is over: at start the server spawns an argon2 warm-up
# (~19 MiB, freed at once), which also sets VmHWM. So VmHWM is reset to the current RSS
# (`echo 5 > /proc/PID/clear_refs`, Linux 4.0+) before the load, and read after it: the exact
# peak. Where the reset is refused, the peak is the largest VmRSS sampled every 20 ms
# (rss-peak.sh), which can miss short spikes; that sampler runs in every case, as a check.
settle() { # PID: until VmRSS holds still for 0.6 s, at most 5 s
    local pid=$1 last=-1 same=0 i rss
    for ((i = 0; i < 25; i++)); do
        rss=$(kib "$pid" VmRSS)
        if ((rss - last < 64 && last - rss < 64)); then
            same=$((same + 1))
            if ((same >= 3)); then return 0; fi
        else
            same=0
        fi
        last=$rss
        sleep 0.2
    done
}
SAMPLER_PID="" S_PEAK="" RSS_METHOD=""
start_sampler() { # PID
    rm -f "$WORK/rss.peak"
    taskset -c "$CLIENT_CPU" bash "$HERE/rss-peak.sh" "$1" "$WORK/rss.peak" 0.02 3600 &
    SAMPLER_PID=$!
    PIDS+=("$SAMPLER_PID")
}
stop_sampler() { # sets S_PEAK (KiB)
    stop_pid "$SAMPLER_PID"
    SAMPLER_PID=""
    [[ -s $WORK/rss.peak ]] || die "the RSS sampler wrote nothing"
    S_PEAK=$(<"$WORK/rss.peak")
}
P_IDLE="" P_PEAK="" P_NOTE=""
begin_peak() { # PID: sets P_IDLE (KiB) and starts watching
    settle "$1"
    P_EXACT=0
    if { echo 5 >"/proc/$1/clear_refs"; } 2>/dev/null &&
        (($(kib "$1" VmHWM) <= $(kib "$1" VmRSS) + 256)); then
        P_EXACT=1
    fi
    P_IDLE=$(kib "$1" VmRSS)
    start_sampler "$1"
}
end_peak() { # PID: sets P_PEAK (KiB) and P_NOTE
    local hwm
    stop_sampler
    hwm=$(kib "$1" VmHWM)
    if ((P_EXACT)); then
        P_PEAK=$((hwm > S_PEAK ? hwm : S_PEAK))
        P_NOTE="VmHWM after reset; sampled $(mib "$S_PEAK")"
        RSS_METHOD=${RSS_METHOD:-"VmHWM, reset to the idle RSS just before the load"}
    else
        P_PEAK=$S_PEAK
        P_NOTE="sampled every 20 ms; VmHWM since start $(mib "$hwm")"
        RSS_METHOD="the largest VmRSS sampled every 20 ms (VmHWM could not be reset)"
    fi
}

make_file() { # PATH BYTES: random bytes
    say "writing $(human "$2") of random bytes to $1"
    head -c "$2" /dev/urandom >"$1"
    [[ $(stat -c %s "$1") == "$2" ]] || die "could not write $1"
}

cpu_ticks() { # "busy total" of one core, or of all with no argument, from /proc/stat
    awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat
}
busy_pct() { # BEFORE AFTER, each "busy total"
    awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " ");
        d = y[2] - x[2]; printf "%.0f", (d > 0 ? 100 * (y[1] - x[1]) / d : 0) }'
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR % 2) printf "%.4f", v[(NR + 1) / 2]; else printf "%.4f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maximum() { printf '%s\n' "$@" | sort -g | tail -1; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", (b > 0 ? a / b : 0) }'; }
mibps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", (s > 0 ? b / s / 1048576 : 0) }'; } # BYTES SECONDS
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
now_ns() { date +%s%N; }

say "work dir $WORK; binary $BIN; streaming server on core $SERVER_CPU, clients on core $CLIENT_CPU; uploads and dd on cores $(upload_cpu_list), upload client $UPLOAD_CLIENT"
say "sizes: stream $(human "$STREAM_BYTES"), upload $(human "$UPLOAD_BYTES"), RSS $(human "$RSS_SMALL") vs $(human "$RSS_LARGE"); $ROUNDS streaming and $UPLOAD_ROUNDS upload round(s), ${RANDOM_SECONDS} s per random-range run; uploads measured $UPLOAD_MEMORY"
read -r load1 _ </proc/loadavg
if awk -v l="$load1" 'BEGIN { exit !(l > 0.5) }'; then
    say "warning: load average is $load1; other work on this machine will skew the figures"
fi

# ---------------------------------------------------------------- setup
PASSWORD='slow river, tall mountain 1987'
(cd "$WORK" && printf '%s\n' "$PASSWORD" | "$BIN" user add admin@example.org --name Admin --admin) \
    >>"$WORK/shuyuan.log" 2>&1 || die "shuyuan user add failed"
(cd "$WORK" && "$BIN" institution add bench-college --name Bench --kind county_college --region bench) \
    >>"$WORK/shuyuan.log" 2>&1 || die "shuyuan institution add failed"

# This server signs in (argon2 alone would raise VmHWM by ~19 MiB), creates the course and
# stores the object to stream; it is then stopped. Sessions live in the database, so the token
# works on every later server.
start_shuyuan
TOKEN=$(curl -sS -X POST "$SY_URL/api/v1/auth/login" -H 'Content-Type: application/json' \
    -d "$(jq -n --arg p "$PASSWORD" '{email: "admin@example.org", password: $p}')" | jq -r '.token // empty')
[[ -n $TOKEN ]] || die "could not sign in"
AUTH=(-H "Authorization: Bearer $TOKEN")
COURSE=$(curl -sS -X POST "$SY_URL/api/v1/courses" "${AUTH[@]}" -H 'Content-Type: application/json' \
    -d '{"institution":"bench-college","title":"Bench"}' | jq -r '.id // empty')
[[ -n $COURSE ]] || die "could not create the course"

upload() { # FILE NAME OUTFILE -> prints "http_code seconds"
    if [[ $UPLOAD_CLIENT == sendfile ]]; then
        on_client_cpu python3 "$HERE/put-sendfile.py" "$SY_URL/api/v1/courses/$COURSE/files/$2" "$1" "$3" \
            "Authorization: Bearer $TOKEN"
    else
        on_client_cpu curl -sS -T "$1" -H 'Expect:' "${AUTH[@]}" -o "$3" -w '%{http_code} %{time_total}\n' \
            --max-time 3600 "$SY_URL/api/v1/courses/$COURSE/files/$2"
    fi
}

make_file "$WORK/stream.bin" "$STREAM_BYTES"
read -r code _ < <(upload "$WORK/stream.bin" stream.bin "$WORK/stream.json")
[[ $code == 201 ]] || die "uploading the stream object answered $code: $(cat "$WORK/stream.json")"
MEDIA_PATH=$(jq -r .url "$WORK/stream.json")
stop_shuyuan
rm -f "$WORK/stream.bin"
mapfile -t objects < <(find "$WORK/data/objects" -type f)
((${#objects[@]} == 1)) || die "expected one stored object, found ${#objects[@]}"
mkdir -p "$WORK/www" "$WORK/nginx/tmp"
echo ok >"$WORK/www/ping"
ln "${objects[0]}" "$WORK/www/stream.bin" # nginx serves the very same inode
cat "${objects[0]}" >/dev/null            # both read it from the page cache

NG_PORT=$(free_port)
cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path $WORK/nginx/tmp/body;
    proxy_temp_path $WORK/nginx/tmp/proxy;
    fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
    scgi_temp_path $WORK/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$NG_PORT;
        root $WORK/www;
    }
}
EOF
# Not through on_server_cpu: a function would run in a subshell and $! would not be nginx.
taskset -c "$SERVER_CPU" "$NGINX" -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" \
    >>"$WORK/nginx/error.log" 2>&1 &
NG_PID=$!
PIDS+=("$NG_PID")
NG_URL="http://127.0.0.1:$NG_PORT/stream.bin"
wait_http "http://127.0.0.1:$NG_PORT/ping" "$NG_PID" nginx

# Both must send the same bytes, sized (Content-Length), for a range and for the whole file.
start_shuyuan
SY_MEDIA="$SY_URL$MEDIA_PATH"
probe_start=$((((STREAM_BYTES / RANGE_BYTES) / 2) * RANGE_BYTES))
probe="$probe_start-$((probe_start + RANGE_BYTES - 1))"
for who in shuyuan nginx; do
    if [[ $who == nginx ]]; then url=$NG_URL; else url=$SY_MEDIA; fi
    code=$(curl -sS -r "$probe" -D "$WORK/$who.headers" -o "$WORK/$who.range" -w '%{http_code}' "$url")
    [[ $code == 206 ]] || die "$who answered $code to a range request"
    if grep -qi '^transfer-encoding:' "$WORK/$who.headers"; then say "note: $who sends ranges chunked"; fi
    grep -qiE "^content-length: $RANGE_BYTES\s*$" "$WORK/$who.headers" || die "$who sent no Content-Length for a range"
    curl -sS -I -o "$WORK/$who.head" "$url"
    grep -qiE "^content-length: $STREAM_BYTES\s*$" "$WORK/$who.head" || die "$who's HEAD has no Content-Length"
done
cmp -s "$WORK/shuyuan.range" "$WORK/nginx.range" || die "shuyuan and nginx sent different bytes"
say "both answer a range with 206 and Content-Length, identical bytes"
stop_shuyuan

# ---------------------------------------------------------------- 1. streaming
SEQ_SY=() SEQ_NG=() SEQ_RATIO=()
RND_SY=() RND_NG=() RND_RATIO=()
P99_SY=() P99_NG=() P99_RATIO=()
STREAM_IDLE=() STREAM_DELTA=()

sequential() { # URL -> MiB/s over SEQ_DOWNLOADS whole-file downloads
    local url=$1 i code size secs total_bytes=0 total_secs=0
    for ((i = 0; i < SEQ_DOWNLOADS; i++)); do
        read -r code size secs < <(on_client_cpu curl -sS -o /dev/null --max-time 600 \
            -w '%{http_code} %{size_download} %{time_total}\n' "$url")
        [[ $code == 200 && $size == "$STREAM_BYTES" ]] || die "whole-file download from $url: $code, $size bytes"
        total_bytes=$((total_bytes + size))
        total_secs=$(awk -v a="$total_secs" -v b="$secs" 'BEGIN { print a + b }')
    done
    mibps "$total_bytes" "$total_secs"
}

field() { sed -n "s/.*\b$2=\([0-9]*\).*/\1/p" "$1"; } # FILE KEY from the RESULT line

random_ranges() { # URL SECONDS SEED OUT -> sets R_MIBPS R_P99_MS R_P50_MS R_SERVER_BUSY R_CLIENT_BUSY
    local url=$1 secs=$2 seed=$3 out=$4 s0 c0 s1 c1
    s0=$(cpu_ticks "$SERVER_CPU") c0=$(cpu_ticks "$CLIENT_CPU")
    on_client_cpu wrk -t1 -c"$CLIENTS" -d"${secs}s" --timeout 30s --latency \
        -s "$HERE/random-range.lua" "$url" -- "$STREAM_BYTES" "$RANGE_BYTES" "$seed" >"$out" 2>&1 ||
        die "wrk failed: $(cat "$out")"
    s1=$(cpu_ticks "$SERVER_CPU") c1=$(cpu_ticks "$CLIENT_CPU")
    grep -q '^RESULT ' "$out" || die "wrk printed no result: $(cat "$out")"
    local requests bytes dur errors
    requests=$(field "$out" requests) bytes=$(field "$out" bytes) dur=$(field "$out" duration_us)
    errors=$(($(field "$out" connect_err) + $(field "$out" read_err) + $(field "$out" write_err) +
        $(field "$out" status_err) + $(field "$out" timeout_err)))
    ((requests > 0)) || die "wrk completed no request against $url"
    ((errors == 0)) || say "warning: $errors wrk errors against $url: $(grep RESULT "$out")"
    ((bytes >= requests * RANGE_BYTES)) || die "responses shorter than the ranges asked for ($url)"
    R_MIBPS=$(mibps "$bytes" "$(awk -v d="$dur" 'BEGIN { print d / 1e6 }')")
    R_P99_MS=$(awk -v u="$(field "$out" p99_us)" 'BEGIN { printf "%.1f", u / 1000 }')
    R_P50_MS=$(awk -v u="$(field "$out" p50_us)" 'BEGIN { printf "%.1f", u / 1000 }')
    R_SERVER_BUSY=$(busy_pct "$s0" "$s1") R_CLIENT_BUSY=$(busy_pct "$c0" "$c1")
}

for ((round = 1; round <= ROUNDS; round++)); do
    order=(shuyuan nginx)
    ((round % 2)) || order=(nginx shuyuan)
    for who in "${order[@]}"; do
        if [[ $who == shuyuan ]]; then
            start_shuyuan
            url="$SY_URL$MEDIA_PATH"
            curl -sS -o /dev/null -r 0-0 "$url" # first request: lazy state, pool, code pages
            begin_peak "$SY_PID"
            idle=$P_IDLE
        else
            url=$NG_URL
        fi
        seq=$(sequential "$url")
        if ((WARMUP_SECONDS > 0)); then random_ranges "$url" "$WARMUP_SECONDS" 0 "$WORK/warmup.out"; fi
        random_ranges "$url" "$RANDOM_SECONDS" "$round" "$WORK/wrk-$who-$round.out"
        line="round $round $who: sequential $seq MiB/s; $CLIENTS x random $(human "$RANGE_BYTES") ranges $R_MIBPS MiB/s, p50 $R_P50_MS ms, p99 $R_P99_MS ms (server core ${R_SERVER_BUSY}% busy, client core ${R_CLIENT_BUSY}%)"
        if [[ $who == shuyuan ]]; then
            end_peak "$SY_PID"
            stop_shuyuan
            STREAM_IDLE+=("$idle")
            STREAM_DELTA+=("$((P_PEAK - idle))")
            SEQ_SY+=("$seq") RND_SY+=("$R_MIBPS") P99_SY+=("$R_P99_MS")
            line+="; RSS idle $(mib "$idle") MiB, peak $(mib "$P_PEAK") MiB ($P_NOTE)"
        else
            SEQ_NG+=("$seq") RND_NG+=("$R_MIBPS") P99_NG+=("$R_P99_MS")
        fi
        say "$line"
    done
    i=$((round - 1))
    SEQ_RATIO+=("$(div "${SEQ_SY[i]}" "${SEQ_NG[i]}")")
    RND_RATIO+=("$(div "${RND_SY[i]}" "${RND_NG[i]}")")
    P99_RATIO+=("$(div "${P99_SY[i]}" "${P99_NG[i]}")")
done
stop_pid "$NG_PID"
rm -f -- "${objects[0]}" "$WORK/www/stream.bin"

# ---------------------------------------------------------------- 2 and 3. uploads
# PUT the file to a fresh server; sets M_SECS, M_IDLE and M_PEAK (KiB), M_NOTE, M_BUSY. The
# file is deleted afterwards and the dirty pages written out, so no run pays for the previous
# one's writeback.
M_SECS="" M_IDLE="" M_PEAK="" M_NOTE="" M_BUSY=""
# How busy the machine was (all cores) during an upload or dd, or the one server core they are
# pinned to.
if [[ $UPLOAD_CPUS =~ ^[0-9]+$ ]]; then
    UPLOAD_BUSY_CPU=$UPLOAD_CPUS UPLOAD_BUSY_WHAT="core $UPLOAD_CPUS"
else
    UPLOAD_BUSY_CPU="" UPLOAD_BUSY_WHAT="cores $(upload_cpu_list)"
fi
measured_upload() { # FILE NAME [COMMAND to run just before the upload]
    local file=$1 name=$2 before=${3:-} idle code secs id c0 c1
    start_shuyuan "$(upload_cpu_list)"
    curl -sS -o /dev/null "${AUTH[@]}" "$SY_URL/api/v1/me"
    [[ -z $before ]] || "$before"
    begin_peak "$SY_PID"
    idle=$P_IDLE
    c0=$(cpu_ticks "$UPLOAD_BUSY_CPU")
    read -r code secs < <(upload "$file" "$name" "$WORK/upload.json")
    c1=$(cpu_ticks "$UPLOAD_BUSY_CPU")
    M_BUSY=$(busy_pct "$c0" "$c1")
    end_peak "$SY_PID"
    [[ $code == 201 ]] || die "uploading $name answered $code: $(cat "$WORK/upload.json")"
    id=$(jq -r .id "$WORK/upload.json")
    code=$(curl -sS -o /dev/null -w '%{http_code}' -X DELETE "${AUTH[@]}" "$SY_URL/api/v1/files/$id")
    [[ $code == 204 ]] || die "deleting the uploaded file answered $code"
    stop_shuyuan
    sync
    M_SECS=$secs M_IDLE=$idle M_PEAK=$P_PEAK M_NOTE=$P_NOTE
}

# Memory that was freed a few seconds ago is cheap to fill again; memory freed longer ago can
# cost a page fault in the hypervisor on first touch (a VM with free page reporting hands freed
# pages back to the host after ~2 s). On this benchmark's machines that alone moved a 2 GiB `dd`
# between 1.0 s (started just after the previous run freed its copy) and 3.2-3.8 s (started 5 s
# later). A Shuyuan run starts a fresh server first, so it always started late, while `dd`
# started at once after the previous `dd` in every other round. Now every measured upload and
# `dd` starts from one of two states, and both are measured (UPLOAD_MEMORY):
#   cold  UPLOAD_PAUSE seconds after the previous run's cleanup: both pay the host's faults;
#   warm  just after writing and deleting a scratch file of the upload's size on the upload
#         cores: both reuse pages freed a moment ago, as on a machine without a hypervisor.
prepare_memory() {
    if [[ $MEMORY_STATE == warm ]]; then
        on_upload_cpus dd if=/dev/zero of="$WORK/data/scratch.bin" bs=8M \
            count=$(((UPLOAD_BYTES + (8 << 20) - 1) / (8 << 20))) status=none
        rm -f "$WORK/data/scratch.bin"
    else
        sleep "$UPLOAD_PAUSE"
    fi
}

# Per memory state: "state sy_median dd_median ratio_median".
UP_RESULTS=() UP_DELTA=() UP_IDLE=()
make_file "$WORK/upload.bin" "$UPLOAD_BYTES"
sync
for MEMORY_STATE in ${UPLOAD_MEMORY//,/ }; do
    UP_SY=() UP_DD=() UP_RATIO=()
    for ((round = 1; round <= UPLOAD_ROUNDS; round++)); do
        order=(shuyuan dd)
        ((round % 2)) || order=(dd shuyuan)
        for who in "${order[@]}"; do
            if [[ $who == shuyuan ]]; then
                measured_upload "$WORK/upload.bin" "upload-$round.bin" prepare_memory
                secs=$M_SECS idle=$M_IDLE peak=$M_PEAK
                UP_SY+=("$(mibps "$UPLOAD_BYTES" "$secs")")
                UP_IDLE+=("$idle")
                UP_DELTA+=("$((peak - idle))")
                say "$MEMORY_STATE round $round shuyuan: PUT $(human "$UPLOAD_BYTES") in ${secs} s = ${UP_SY[-1]} MiB/s ($UPLOAD_BUSY_WHAT ${M_BUSY}% busy); RSS idle $(mib "$idle") MiB, peak $(mib "$peak") MiB ($M_NOTE)"
            else
                prepare_memory
                c0=$(cpu_ticks "$UPLOAD_BUSY_CPU")
                t0=$(now_ns)
                on_upload_cpus dd if="$WORK/upload.bin" of="$WORK/data/dd-copy.bin" bs=8M conv=fsync status=none
                t1=$(now_ns)
                c1=$(cpu_ticks "$UPLOAD_BUSY_CPU")
                secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
                rm -f "$WORK/data/dd-copy.bin"
                sync
                UP_DD+=("$(mibps "$UPLOAD_BYTES" "$secs")")
                say "$MEMORY_STATE round $round dd: $(human "$UPLOAD_BYTES") in ${secs} s = ${UP_DD[-1]} MiB/s ($UPLOAD_BUSY_WHAT $(busy_pct "$c0" "$c1")% busy)"
            fi
        done
        i=$((round - 1))
        UP_RATIO+=("$(div "${UP_SY[i]}" "${UP_DD[i]}")")
    done
    UP_RESULTS+=("$MEMORY_STATE $(median "${UP_SY[@]}") $(median "${UP_DD[@]}") $(median "${UP_RATIO[@]}")")
done
rm -f "$WORK/upload.bin"

GROW_PEAK=() GROW_DELTA=()
for size in "$RSS_SMALL" "$RSS_LARGE"; do
    make_file "$WORK/grow.bin" "$size"
    measured_upload "$WORK/grow.bin" "grow-$size.bin"
    secs=$M_SECS idle=$M_IDLE peak=$M_PEAK
    rm -f "$WORK/grow.bin"
    GROW_PEAK+=("$peak")
    GROW_DELTA+=("$((peak - idle))")
    say "RSS upload of $(human "$size"): ${secs} s; RSS idle $(mib "$idle") MiB, peak $(mib "$peak") MiB ($M_NOTE)"
done

# ---------------------------------------------------------------- report
verdict() { if "$@"; then echo PASS; else echo MISS; fi; }
fmt_ratio() { awk -v r="$1" -v d="${2:-2}" 'BEGIN { printf "%.*fx", d, r }'; }
r1() { awk -v v="$1" 'BEGIN { printf "%.1f", v }'; }
rows=()
row() { rows+=("$(printf '%-44s %-14s %-18s %-7s %-9s %s' "$@")"); }

m_seq=$(median "${SEQ_RATIO[@]}")
row "$(human "$STREAM_BYTES") sequential download, MiB/s" "$(r1 "$(median "${SEQ_SY[@]}")")" \
    "nginx $(r1 "$(median "${SEQ_NG[@]}")")" "$(fmt_ratio "$m_seq")" ">=0.80x" "$(verdict le "$T_STREAM_RATIO" "$m_seq")"
m_rnd=$(median "${RND_RATIO[@]}")
row "$CLIENTS clients, random $(human "$RANGE_BYTES") ranges, MiB/s" "$(r1 "$(median "${RND_SY[@]}")")" \
    "nginx $(r1 "$(median "${RND_NG[@]}")")" "$(fmt_ratio "$m_rnd")" ">=0.80x" "$(verdict le "$T_STREAM_RATIO" "$m_rnd")"
m_p99=$(median "${P99_RATIO[@]}")
row "$CLIENTS clients, random $(human "$RANGE_BYTES") ranges, p99 ms" "$(r1 "$(median "${P99_SY[@]}")")" \
    "nginx $(r1 "$(median "${P99_NG[@]}")")" "$(fmt_ratio "$m_p99")" "<=2.00x" "$(verdict le "$m_p99" "$T_P99_RATIO")"
d=$(mib "$(maximum "${STREAM_DELTA[@]}")")
row "peak RSS above idle, streaming $(human "$STREAM_BYTES")" "$d MiB" "idle $(mib "$(median "${STREAM_IDLE[@]}")") MiB" \
    "-" "<32 MiB" "$(verdict lt "$d" "$T_RSS_MIB")"
d=$(mib "$(maximum "${UP_DELTA[@]}")")
row "peak RSS above idle, uploading $(human "$UPLOAD_BYTES")" "$d MiB" "idle $(mib "$(median "${UP_IDLE[@]}")") MiB" \
    "-" "<32 MiB" "$(verdict lt "$d" "$T_RSS_MIB")"
g=$(div "${GROW_PEAK[1]}" "${GROW_PEAK[0]}")
row "peak RSS, $(human "$RSS_LARGE") vs $(human "$RSS_SMALL") upload" "$(mib "${GROW_PEAK[1]}") MiB" \
    "$(mib "${GROW_PEAK[0]}") MiB" "$(fmt_ratio "$g" 3)" "<=1.10x" "$(verdict le "$g" "$T_GROWTH")"
for result in "${UP_RESULTS[@]}"; do
    read -r state sy dd ratio <<<"$result"
    row "$(human "$UPLOAD_BYTES") upload (PUT, $state), MiB/s" "$(r1 "$sy")" "dd $(r1 "$dd")" \
        "$(fmt_ratio "$ratio")" ">=0.70x" "$(verdict le "$T_UPLOAD_RATIO" "$ratio")"
done

elapsed=$((SECONDS - START_SECONDS))
echo
echo "Shuyuan media benchmarks: medians of $ROUNDS streaming and $UPLOAD_ROUNDS upload rounds; each ratio is the median of per-round ratios$([[ ${QUICK:-0} == 1 ]] && echo ' (QUICK: small sizes, not the targets)')"
printf '%-44s %-14s %-18s %-7s %-9s %s\n' measure shuyuan baseline ratio target result
printf '%s\n' "${rows[@]}"
echo "(peak RSS: $RSS_METHOD; above idle: the worst run; growth: peaks, $(mib "${GROW_DELTA[0]}") and $(mib "${GROW_DELTA[1]}") MiB above idle)"
read -r load_end _ </proc/loadavg
echo "wall time: $((elapsed / 60)) min $((elapsed % 60)) s; load average $load1 at start, $load_end at end; $CPUS cores, $(uname -r)"
if [[ ${BENCH_FAIL_ON_MISS:-0} == 1 ]] && printf '%s\n' "${rows[@]}" | grep -q ' MISS$'; then
    exit 3
fi
