#!/usr/bin/env bash
# Detection annotations (PPOCRLabel or ICDAR 2015) -> recognition crops -> dataset in S3.
#
# Usage: prepare_from_detection.sh ppocrlabel|icdar2015 SRC WORK_DIR S3_URI
#   SRC: a PPOCRLabel Label.txt, or a folder of ICDAR 2015 gt_*.txt files.
#   WORK_DIR receives the crops, labels.txt, dict.txt, train.txt and val.txt, and is pushed.
# Options (environment variables):
#   IMAGES_ROOT=DIR     where the page images are (ICDAR 2015; PPOCRLabel finds them itself)
#   VAL=0.1 SEED=0      validation fraction and seed of the split
#   GROUP_BY=REGEX      group key for the split; by default crops of one page stay together
#   BASE_DICT=FILE      fine-tuning: keep this dictionary's order, only append new characters
#   RECTRAIN=rectrain   the command to run
# Example: data_preparation/scripts/prepare_from_detection.sh ppocrlabel \
#            data_preparation/sample/detection/pages/Label.txt work/crops s3://rectrain/datasets/crops
set -euo pipefail

if [ "$#" -ne 4 ]; then
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
FORMAT=$1
SRC=$2
WORK_DIR=${3%/}
S3_URI=${4%/}
RECTRAIN=${RECTRAIN:-rectrain}
HERE=$(cd "$(dirname "$0")" && pwd)
step() { printf '\n==> %s\n' "$*"; }

step "convert $FORMAT boxes to recognition crops"
if [ -n "${IMAGES_ROOT:-}" ]; then
    $RECTRAIN data convert --from "$FORMAT" "$SRC" --images-root "$IMAGES_ROOT" -o "$WORK_DIR"
else
    $RECTRAIN data convert --from "$FORMAT" "$SRC" -o "$WORK_DIR"
fi

# Crops are named after their source page; keep each page's crops on one side of the split.
export GROUP_BY=${GROUP_BY:-'^(?:.*/)?(.+)_\d+\.[A-Za-z]+$'}
RECTRAIN=$RECTRAIN REPORTS=${REPORTS:-$WORK_DIR.reports} "$HERE/prepare_from_labels.sh" "$WORK_DIR" "$S3_URI"
