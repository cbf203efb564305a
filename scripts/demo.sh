#!/usr/bin/env bash
# A township hall's working day on the sample data, with nothing to set up:
# builds hallsync, initialises a township node in a fresh directory, imports
# the sample catalogue and the 2026 holiday calendar, accepts and advances
# cases, and prints the overdue and due-soon lists.
#
#   HALLSYNC_DEMO_DIR  where to put the node (default: a new temporary directory)
#   HALLSYNC_NOW       the demo's "now" (default 2026-11-23 10:00, so it reads
#                      the same every day; the calendar covers 2026)
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --locked --quiet --bin hallsync
hs="$PWD/target/debug/hallsync"
sample="$PWD/topology/sample-city"

export HALLSYNC_DATA_DIR="${HALLSYNC_DEMO_DIR:-$(mktemp -d -t hallsync-demo.XXXXXX)}"
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
c1=$(accept "$homestead" "张建国" "2026-11-02 09:15" 140212197002150011)
c2=$(accept "$roadside" "李秀英" "2026-11-13 10:40" 140212198511020022)
c3=$(accept "$building" "王志强" "2026-11-16 14:05" 140212197908300033)
c4=$(accept "$relief" "赵桂兰" "2026-11-18 09:30" 140212195603120044)
c5=$(accept "$grant" "刘海" "2026-11-20 11:20" 140212196107070055)
c6=$(accept "$homestead" "陈立新" "2026-11-05 15:45" 140212198804160066)
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

echo
echo "The node is in $HALLSYNC_DATA_DIR; try: HALLSYNC_DATA_DIR=$HALLSYNC_DATA_DIR $hs case show $c1"
