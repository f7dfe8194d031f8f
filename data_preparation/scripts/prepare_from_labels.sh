#!/usr/bin/env bash
# Labelled word images -> validated, split dataset in S3.
#
# Usage: prepare_from_labels.sh DATASET_DIR S3_URI
#   DATASET_DIR holds the label file (image_path<TAB>label, paths relative to DATASET_DIR)
#   and the images. The script writes dict.txt (unless there is one), train.txt and val.txt into
#   it, then pushes it.
# Options (environment variables):
#   LABELS=labels.txt   label file name inside DATASET_DIR
#   BASE_DICT=FILE      fine-tuning: keep this dictionary's order, only append new characters
#   VAL=0.1 SEED=0      validation fraction and seed of the split
#   GROUP_BY=REGEX      keep images whose path gives the same first regex group on one side
#   REPORTS=reports     where the validation reports (JSON) go
#   RECTRAIN=rectrain   the command to run (e.g. "venv/bin/rectrain")
# Example: data_preparation/scripts/prepare_from_labels.sh work/words s3://rectrain/datasets/words
set -euo pipefail

if [ "$#" -ne 2 ]; then
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
DATASET_DIR=${1%/}
S3_URI=${2%/}
LABELS=${LABELS:-labels.txt}
VAL=${VAL:-0.1}
SEED=${SEED:-0}
REPORTS=${REPORTS:-reports}
RECTRAIN=${RECTRAIN:-rectrain}
step() { printf '\n==> %s\n' "$*"; }

[ -f "$DATASET_DIR/$LABELS" ] || { echo "error: $DATASET_DIR/$LABELS not found. Fix: pass the folder that holds $LABELS (or set LABELS=)." >&2; exit 2; }
mkdir -p "$REPORTS"

step "1/6 validate the labels and images"
$RECTRAIN data validate "$DATASET_DIR/$LABELS" --json "$REPORTS/labels.json"

step "2/6 dictionary"
if [ -e "$DATASET_DIR/dict.txt" ] && [ -n "${BASE_DICT:-}" ]; then
    echo "error: $DATASET_DIR/dict.txt exists and BASE_DICT is set: which one is meant? Fix: move $DATASET_DIR/dict.txt away to build on $BASE_DICT, or unset BASE_DICT to keep it." >&2
    exit 2
elif [ -e "$DATASET_DIR/dict.txt" ]; then
    # rectrain never replaces a file it did not write; step 4 checks the labels against this one.
    echo "$DATASET_DIR/dict.txt exists: kept (remove it to build a new one from $LABELS)"
elif [ -n "${BASE_DICT:-}" ]; then
    $RECTRAIN data dict "$DATASET_DIR/$LABELS" -o "$DATASET_DIR/dict.txt" --base "$BASE_DICT"
else
    $RECTRAIN data dict "$DATASET_DIR/$LABELS" -o "$DATASET_DIR/dict.txt"
fi

step "3/6 split"
if [ -n "${GROUP_BY:-}" ]; then
    $RECTRAIN data split "$DATASET_DIR/$LABELS" -o "$DATASET_DIR" --val "$VAL" --seed "$SEED" --group-by "$GROUP_BY"
else
    $RECTRAIN data split "$DATASET_DIR/$LABELS" -o "$DATASET_DIR" --val "$VAL" --seed "$SEED"
fi

step "4/6 validate what training reads, against the dictionary"
$RECTRAIN data validate "$DATASET_DIR/train.txt" "$DATASET_DIR/val.txt" --dict "$DATASET_DIR/dict.txt" \
    --json "$REPORTS/train-val.json"

step "5/6 check S3 permissions"
$RECTRAIN s3 check "$S3_URI/"

step "6/6 push"
$RECTRAIN s3 push "$DATASET_DIR" "$S3_URI"
echo "dataset ready: $S3_URI/ (train.txt, val.txt, dict.txt, images, manifest.jsonl)"
