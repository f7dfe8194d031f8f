#!/usr/bin/env bash
# Nothing yet -> synthetic Thai word images -> dataset in S3 (optionally packed in tar shards).
#
# Usage: prepare_synthetic.sh N_IMAGES WORK_DIR S3_URI
# Options (environment variables):
#   WORDS=thai          "thai" (PyThaiNLP's word list, offline) or a file with one word per line
#   FONTS=default       "default" (Sarabun, Noto Sans Thai from PyPI) or a folder of .ttf/.otf
#   SEED=0 VAL=0.1      same seed, same images and split
#   EFFECTS=default     "default", "none" (clean images) or a comma list (rectrain data synth --help)
#   PACK=0              1: upload as tar shards + manifest (for large sets; pull with --unpack)
#   SHARD_SIZE=128MB    shard size when PACK=1
#   RECTRAIN=rectrain   the command to run
# Example: data_preparation/scripts/prepare_synthetic.sh 2000 work/synth s3://rectrain/datasets/synth
set -euo pipefail

if [ "$#" -ne 3 ]; then
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
N=$1
WORK_DIR=${2%/}
S3_URI=${3%/}
WORDS=${WORDS:-thai}
FONTS=${FONTS:-default}
SEED=${SEED:-0}
VAL=${VAL:-0.1}
PACK=${PACK:-0}
RECTRAIN=${RECTRAIN:-rectrain}
step() { printf '\n==> %s\n' "$*"; }

step "1/5 synthesize $N images"
$RECTRAIN data synth --words "$WORDS" --fonts "$FONTS" -n "$N" -o "$WORK_DIR" --seed "$SEED" \
    --effects "${EFFECTS:-default}"

step "2/5 dictionary and split"
$RECTRAIN data dict "$WORK_DIR/labels.txt" -o "$WORK_DIR/dict.txt"
$RECTRAIN data split "$WORK_DIR/labels.txt" -o "$WORK_DIR" --val "$VAL" --seed "$SEED"

step "3/5 validate"
$RECTRAIN data validate "$WORK_DIR/train.txt" "$WORK_DIR/val.txt" --dict "$WORK_DIR/dict.txt"

step "4/5 check S3 permissions"
$RECTRAIN s3 check "$S3_URI/"

step "5/5 push"
if [ "$PACK" = "1" ]; then
    $RECTRAIN data pack "$WORK_DIR" -o "$WORK_DIR.packed" --shard-size "${SHARD_SIZE:-128MB}"
    $RECTRAIN s3 push "$WORK_DIR.packed" "$S3_URI"
    echo "dataset ready (packed): $S3_URI/ -- download with: rectrain s3 pull $S3_URI DIR --unpack"
else
    $RECTRAIN s3 push "$WORK_DIR" "$S3_URI"
    echo "dataset ready: $S3_URI/"
fi
