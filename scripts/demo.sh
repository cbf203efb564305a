#!/usr/bin/env bash
# Two levels linked, on the sample data, with nothing to set up: builds
# hallsync; runs a township hall's working day offline (sample catalogue,
# 2026 holiday calendar, cases accepted and advanced, overdue and due-soon
# lists); then creates a federation CA, a county hub and the township's
# certificates, runs both nodes on loopback over mutual-TLS QUIC, and shows
# the township's cases at the county and the county's catalogue at the
# township; the county issues a supervision order about an overdue case,
# the order goes down to the township, and its reply comes back up.
#
#   HALLSYNC_DEMO_DIR  where to put everything (default: a new temporary directory)
#   HALLSYNC_NOW       the demo's "now" (default 2026-11-23 10:00, so it reads
#                      the same every day; the calendar covers 2026)
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --locked --quiet --bin hallsync
hs="$PWD/target/debug/hallsync"
sample="$PWD/topology/sample-city"

demo="${HALLSYNC_DEMO_DIR:-$(mktemp -d -t hallsync-demo.XXXXXX)}"
export HALLSYNC_DATA_DIR="$demo/township"
export HALLSYNC_NOW="${HALLSYNC_NOW:-2026-11-23 10:00}"
export HALLSYNC_OPERATOR="王芳"

step() { printf '\n== %s\n' "$*"; }

step "initialise the township node (data in $HALLSYNC_DATA_DIR)"
"$hs" init --id tw-101 --name "样例镇便民服务中心" --region 140212101 --level township

step "import the township catalogue, published by the legal office"
"$hs" item import "$sample/catalogue-township-140212101.csv" --publish-by "法制办 李明"

step "import the 2026 holiday calendar"
"$hs" calendar import "$sample/calendar-2026.csv"

homestead=11140212MB1234567K500001   # 农村村民宅基地审批: 20 / 10 working days
building=11140212MB1234567K500002    # 乡村建设规划许可证核发: 20 / 10 working days
roadside=11140212MB1234567K500004    # 临时占用村镇道路审批: 20 / 5 working days
relief=11140212MB1234567K500018      # 临时救助金给付: 20 / 10 working days
grant=11140212MB1234567K500058       # 殡葬补贴申领: 20 / 10 working days

accept() { # item applicant when → prints the case number
    "$hs" --json case accept --item "$1" --applicant "$2" --id-number "$4" --at "$3" \
        | sed -n 's/.*"number": "\(.*\)".*/\1/p' | head -n 1
}

step "accept cases over the past weeks"
c1=$(accept "$homestead" "张建国" "2026-11-02 09:15" 140212197002150010)
c2=$(accept "$roadside" "李秀英" "2026-11-13 10:40" 140212198511020024)
c3=$(accept "$building" "王志强" "2026-11-16 14:05" 140212197908300038)
c4=$(accept "$relief" "赵桂兰" "2026-11-18 09:30" 140212195603120045)
c5=$(accept "$grant" "刘海" "2026-11-20 11:20" 140212196107070055)
c6=$(accept "$homestead" "陈立新" "2026-11-05 15:45" 140212198804160063)
echo "accepted $c1 $c2 $c3 $c4 $c5 $c6"

step "advance them"
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

step "every open case"
"$hs" case list

step "the federation: a CA, the county hub (with its own catalogue and calendar) and this township"
fed="$demo/federation"
county="$demo/county"
port=$((20000 + $$ % 20000))
"$hs" ca init --name "样例市政务服务" --certs-dir "$fed/certs" --topology "$fed/topology.toml"
"$hs" node add --id cn-212 --name "样例县政务服务中心" --level county --region 140212 \
    --addr "127.0.0.1:$port" --certs-dir "$fed/certs" --topology "$fed/topology.toml"
"$hs" node add --id tw-101 --name "样例镇便民服务中心" --level township --region 140212101 \
    --parent cn-212 --certs-dir "$fed/certs" --topology "$fed/topology.toml"
"$hs" node list --certs-dir "$fed/certs" --topology "$fed/topology.toml"
"$hs" --data-dir "$county" init --id cn-212 --name "样例县政务服务中心" --region 140212 --level county
"$hs" --data-dir "$county" item import "$sample/catalogue-county-140212.csv" --publish-by "县司法局 周敏"
"$hs" --data-dir "$county" calendar import "$sample/calendar-2026.csv"

# Runs both nodes, the township dialling the county, until this run of the
# township reports itself in sync; then stops both (Ctrl-C or SIGTERM: every
# acknowledged write is already on disk). With "show", prints both statuses
# while they run.
sync_both() {
    pids=()
    trap stop EXIT
    "$hs" --data-dir "$county" run --bundle "$fed/certs/bundles/cn-212" 2>>"$demo/county.log" &
    pids+=($!)
    "$hs" run --bundle "$fed/certs/bundles/tw-101" 2>>"$demo/township.log" &
    pids+=($!)
    for _ in $(seq 1 150); do
        st=$("$hs" status --json 2>/dev/null || true)
        if grep -q "\"pid\": ${pids[1]}," <<<"$st" && grep -q '"in_sync": true' <<<"$st"; then
            break
        fi
        sleep 0.2
    done
    if [ "${1:-}" = show ]; then
        sleep 1.5 # the status file shows registry entries received within the second
        "$hs" status
        "$hs" --data-dir "$county" status
    fi
    stop
    trap - EXIT
}
stop() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait; }

step "run both nodes; the township dials the county"
sync_both show

step "at the county: the township's open cases"
"$hs" --data-dir "$county" case list

step "at the township: the county's catalogue came down"
"$hs" item list | tail -n 3

step "the county supervises: a yellow-card order to the township about its overdue case"
HALLSYNC_OPERATOR="县电子监察室 孙丽" "$hs" --data-dir "$county" order issue --unit 140212101 \
    --case "$c1" --rule case_time_limit --card yellow \
    --reason "超过承诺时限未办结，请说明原因并限期办结"

step "sync: the order goes down to the township it is addressed to"
sync_both
"$hs" order list

step "the township replies; the next sync takes the reply up"
"$hs" order reply cn-212.1 --text "已补齐审核意见，定于11月25日办结"
sync_both
"$hs" --data-dir "$county" order show cn-212.1

echo
echo "Everything is in $demo (logs: county.log, township.log); try:"
echo "  $hs --data-dir $county case show $c1"
