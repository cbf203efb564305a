#!/usr/bin/env bash
# Two halls at work, on the sample data, with nothing to set up: builds
# hallsync; creates a federation CA, a county hub and a township hall, and
# starts both nodes (`hallsync run`), the township dialling the county over
# mutual-TLS QUIC on loopback. Both keep running throughout: every command
# after that goes through the running node's API, as a hall's clerks work.
# The township imports its catalogue and calendar and accepts and advances
# cases; a new case shows at the county within a second or two; the county's
# catalogue comes down; the county issues a supervision order, it goes down
# to the township, and the reply comes back up. Last, it creates an operator
# at each node and prints the console addresses to open in a browser, and
# keeps the nodes running until Ctrl-C.
#
#   HALLSYNC_DEMO_DIR   where to put everything (default: a new temporary directory)
#   HALLSYNC_NOW        the demo's "now" (default 2026-11-23 10:00, so it reads
#                       the same every day; the calendar covers 2026)
#   HALLSYNC_DEMO_STOP  1: stop both nodes at the end and exit instead of
#                       waiting for Ctrl-C (what CI runs)
set -euo pipefail
cd "$(dirname "$0")/.."

echo "building hallsync (the first build fetches crates and takes a few minutes) …"
cargo build --locked --quiet --bin hallsync
hs="$PWD/target/debug/hallsync"
sample="$PWD/topology/sample-city"

demo="${HALLSYNC_DEMO_DIR:-$(mktemp -d -t hallsync-demo.XXXXXX)}"
mkdir -p "$demo"
township="$demo/township"
county="$demo/county"
fed="$demo/federation"
export HALLSYNC_DATA_DIR="$township"
export HALLSYNC_NOW="${HALLSYNC_NOW:-2026-11-23 10:00}"
export HALLSYNC_OPERATOR="王芳"
export HALLSYNC_CERTS="$fed/certs"
export HALLSYNC_TOPOLOGY="$fed/topology.toml"

step() { printf '\n== %s\n' "$*"; }
fail() { echo "demo: $*" >&2; exit 1; }
ms() { date +%s%3N; }

# The nodes, stopped on any exit: SIGTERM, then wait for each (a node stops
# within about a second, every acknowledged write already on disk).
pids=()
stop_nodes() {
    local p status=0
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" || status=$?; done
    pids=()
    return "$status"
}
on_exit() {
    local status=$?
    trap - EXIT INT TERM
    if [ "${#pids[@]}" -gt 0 ]; then
        echo "stopping the nodes …" >&2
        stop_nodes || true
    fi
    if [ "$status" -ne 0 ]; then
        echo "demo failed (exit $status); the nodes' logs: $demo/county.log, $demo/township.log" >&2
    fi
    exit "$status"
}
trap on_exit EXIT
trap 'exit 0' INT TERM

# Polls until `$1` (a command) succeeds, for up to `$2` seconds (default 30);
# `$3` says what was awaited, for the message when it never comes.
await() {
    local deadline=$(($(date +%s) + ${2:-30}))
    until eval "$1" >/dev/null 2>&1; do
        nodes_alive
        [ "$(date +%s)" -lt "$deadline" ] || fail "gave up waiting for ${3:-$1}"
        sleep 0.1
    done
}

# Fails at once if a node has stopped (a port in use, say).
nodes_alive() {
    local p
    for p in "${pids[@]}"; do
        kill -0 "$p" 2>/dev/null || fail "a node stopped on its own; its log: $demo/county.log, $demo/township.log"
    done
}

# Whether the node in data directory `$1` runs as process `$2` and answers
# through its API (and, with `$3`, has its link to that peer up).
serving() {
    local st
    st=$("$hs" --json --data-dir "$1" status) || return 1
    grep -q '"running": true' <<<"$st" && grep -q "\"pid\": $2," <<<"$st" || return 1
    [ -z "${3:-}" ] || tr -d ' \n' <<<"$st" | grep -q "\"id\":\"$3\",[^}]*\"connected\":true"
}

# Starts the node of bundle `$1` on data directory `$2`, logging to `$3`.
start_node() {
    "$hs" --data-dir "$2" run --bundle "$fed/certs/bundles/$1" 2>>"$3" &
    pids+=($!)
}

port_base=$((20000 + $$ % 20000))
quic_port=$port_base
county_console="127.0.0.1:$((port_base + 1))"
township_console="127.0.0.1:$((port_base + 2))"

step "the federation: a CA, a county hub and a township hall below it (in $demo)"
"$hs" ca init --name "样例市政务服务"
"$hs" node add --id cn-212 --name "样例县政务服务中心" --level county --region 140212 \
    --addr "127.0.0.1:$quic_port" --console "$county_console"
"$hs" node add --id tw-101 --name "样例镇便民服务中心" --level township --region 140212101 \
    --parent cn-212 --console "$township_console"
"$hs" node list

step "start both nodes; each creates its data directory from its bundle, the township dials the county"
start_node cn-212 "$county" "$demo/county.log"
county_pid=${pids[0]}
start_node tw-101 "$township" "$demo/township.log"
township_pid=${pids[1]}
await "serving '$county' $county_pid" 60 "the county to start (see $demo/county.log)"
await "serving '$township' $township_pid cn-212" 60 "the township to link to the county (see $demo/township.log)"
"$hs" status

step "from here on every command goes through the running node's API; the county imports its catalogue and calendar"
"$hs" --data-dir "$county" item import "$sample/catalogue-county-140212.csv" --publish-by "县司法局 周敏"
"$hs" --data-dir "$county" calendar import "$sample/calendar-2026.csv"

step "the township imports its catalogue, published by the legal office, and the 2026 holiday calendar"
"$hs" item import "$sample/catalogue-township-140212101.csv" --publish-by "法制办 李明"
"$hs" calendar import "$sample/calendar-2026.csv"

homestead=11140212MB1234567K500001   # 农村村民宅基地审批: 20 / 10 working days
building=11140212MB1234567K500002    # 乡村建设规划许可证核发: 20 / 10 working days
roadside=11140212MB1234567K500004    # 临时占用村镇道路审批: 20 / 5 working days
relief=11140212MB1234567K500018      # 临时救助金给付: 20 / 10 working days
grant=11140212MB1234567K500058       # 殡葬补贴申领: 20 / 10 working days

accept() { # item applicant when id-number → prints the case number
    local out
    out=$("$hs" --json case accept --item "$1" --applicant "$2" --id-number "$4" --at "$3")
    sed -n 's/.*"number": "\(.*\)".*/\1/p' <<<"$out" | head -n 1
}

step "the township accepts cases over the past weeks"
c1=$(accept "$homestead" "张建国" "2026-11-02 09:15" 140212197002150010)
c2=$(accept "$roadside" "李秀英" "2026-11-13 10:40" 140212198511020024)
c3=$(accept "$building" "王志强" "2026-11-16 14:05" 140212197908300038)
c4=$(accept "$relief" "赵桂兰" "2026-11-18 09:30" 140212195603120045)
c6=$(accept "$homestead" "陈立新" "2026-11-05 15:45" 140212198804160063)
echo "accepted $c1 $c2 $c3 $c4 $c6"

step "and advances them"
"$hs" case event "$c1" --at "2026-11-03 10:00" step-start --step 审核
"$hs" case event "$c2" --at "2026-11-16 09:00" step-start --step 现场踏勘
"$hs" case event "$c3" --at "2026-11-17 09:30" supplement-request --materials "建设工程设计方案（缺图纸）"
"$hs" case event "$c3" --at "2026-11-20 16:00" supplement-complete
"$hs" case event "$c4" --at "2026-11-18 15:00" publish
"$hs" case event "$c4" --at "2026-11-19 10:00" special-start --procedure appraisal --reason "家庭经济状况核对" --until "2026-11-27"
"$hs" case event "$c6" --at "2026-11-06 09:00" step-start --step 审核
"$hs" case event "$c6" --at "2026-11-10 17:00" step-finish --step 审核 --opinion 同意
"$hs" case event "$c6" --at "2026-11-12 10:00" conclude --outcome approved --certificate "宅基地批准书 2026-017"
"$hs" case event "$c6" --at "2026-11-12 10:05" publish

step "overdue cases (past the committed due time) as of $HALLSYNC_NOW"
"$hs" case list --overdue

step "cases due within 3 working days"
"$hs" case list --due-within 3

step "a new case at the township's window, watched for at the county"
started=$(ms)
c5=$(accept "$grant" "刘海" "2026-11-20 11:20" 140212196107070055)
accepted=$(ms)
await "'$hs' --data-dir '$county' case show '$c5'" 30 "case $c5 at the county"
arrived=$(ms)
echo "case $c5 accepted at the township in $((accepted - started)) ms; at the county $((arrived - accepted)) ms later"
"$hs" --data-dir "$county" case show "$c5"

step "at the county: the township's open cases"
"$hs" --data-dir "$county" case list

step "at the township: the county's catalogue came down"
await "'$hs' item show 11140212MB0000011A400001" 30 "the county's catalogue at the township"
"$hs" item list | tail -n 5

step "the county supervises: a yellow-card order to the township about its overdue case"
HALLSYNC_OPERATOR="县电子监察室 孙丽" "$hs" --data-dir "$county" order issue --unit 140212101 \
    --case "$c1" --rule case_time_limit --card yellow \
    --reason "超过承诺时限未办结，请说明原因并限期办结"

step "it goes down to the township it is addressed to"
await "'$hs' order show cn-212.1" 30 "the order at the township"
"$hs" order list

step "the township replies; the reply goes up to the county"
"$hs" order reply cn-212.1 --text "已补齐审核意见，定于11月25日办结"
await "'$hs' --json --data-dir '$county' order show cn-212.1 | grep -q 已补齐审核意见" 30 "the reply at the county"
"$hs" --data-dir "$county" order show cn-212.1

step "the county's statistics of November, by township (kept as the cases arrive)"
"$hs" --data-dir "$county" stats --from 2026-11-01 --to 2026-11-30 --by unit

step "both nodes, still running"
"$hs" status
"$hs" --data-dir "$county" status

step "operators for the web console (passwords read from standard input)"
password() { od -An -N9 -tx1 /dev/urandom | tr -d ' \n'; }
township_password=$(password)
county_password=$(password)
"$hs" operator add wangfang --name "王芳" --role clerk --role reviewer --role admin <<<"$township_password"
"$hs" --data-dir "$county" operator add sunli --name "孙丽" --role supervisor --role admin <<<"$county_password"

echo
echo "Both nodes are running; everything is in $demo (logs: county.log, township.log)."
echo "Open the console in a browser:"
echo "  township  http://$township_console/   login wangfang   password $township_password"
echo "  county    http://$county_console/   login sunli      password $county_password"
echo "Or use the CLI, which goes through the running node:"
echo "  $hs --data-dir $county case show $c1"

if [ "${HALLSYNC_DEMO_STOP:-}" = 1 ]; then
    step "HALLSYNC_DEMO_STOP=1: stopping both nodes"
    stop_nodes
    echo "both nodes stopped cleanly; their data stays in $demo"
    exit 0
fi
echo
echo "Press Ctrl-C to stop both nodes."
while :; do
    nodes_alive
    sleep 1
done
