#!/usr/bin/env bash
# `edgekit eval` on three small bundles: an image classifier, an anomaly detector and a
# regressor, each trained briefly on edgekit's synthetic data (`edgekit train`, few
# epochs), converted with `edgekit convert` (no gate), then measured through the runtime
# on data they have never seen (the same generators with another seed).
#
#     tools/eval_examples.sh [OUT]      # default out/eval-examples; about 8 minutes on 2 cores
#
# The figures are those of briefly trained models: the point is the tables, not the scores.
set -euo pipefail
OUT=${1:-out/eval-examples}
EDGEKIT=${EDGEKIT:-python -m edgekit}
mkdir -p "$OUT"

show() {  # print the command, then run it
    echo "\$ $*"
    "$@"
    echo
}

# image classifier: ResNet-8 on shapes
$EDGEKIT -q train ic-resnet8 -o "$OUT/ic" --samples 250 --epochs 25 >/dev/null
$EDGEKIT -q convert "$OUT/ic/ic-resnet8.keras" -o "$OUT/ic.edgekit" --data "$OUT/ic/heldout.npz" \
    --variants tflite-fp32,tflite-int8,onnx-int8 >/dev/null
$EDGEKIT -q datasets synth shapes -o "$OUT/shapes-unseen" --samples 40 --seed 99 >/dev/null
show $EDGEKIT -q eval "$OUT/ic.edgekit" --data "$OUT/shapes-unseen" -o "$OUT/ic-eval"

# anomaly detection: dense autoencoder on machine-vibration features
$EDGEKIT -q train ad-autoencoder -o "$OUT/ad" --samples 1500 --epochs 100 >/dev/null
$EDGEKIT -q convert "$OUT/ad/ad-autoencoder.keras" -o "$OUT/ad.edgekit" --data "$OUT/ad/heldout.npz" \
    --variants tflite-fp32,tflite-int8 >/dev/null
$EDGEKIT -q datasets synth anomaly -o "$OUT/anomaly-unseen" --samples 150 --seed 99 >/dev/null
show $EDGEKIT -q eval "$OUT/ad.edgekit" --data "$OUT/anomaly-unseen"

# regression: LSTM demand forecasting
$EDGEKIT -q train demand-lstm -o "$OUT/demand" --epochs 5 >/dev/null
$EDGEKIT -q convert "$OUT/demand/demand-lstm.keras" -o "$OUT/demand.edgekit" --data "$OUT/demand/heldout.npz" \
    --variants tflite-fp32,tflite-int8 >/dev/null
$EDGEKIT -q datasets synth demand -o "$OUT/demand-unseen" --seed 99 >/dev/null
show $EDGEKIT -q eval "$OUT/demand.edgekit" --data "$OUT/demand-unseen"
