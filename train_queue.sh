#!/usr/bin/env bash
# Trains the model zoo in sequence (CPU, hours). Usage: bash train_queue.sh > data/train.log 2>&1 &
set -u
. .venv/bin/activate
run() { echo "=== $(date +%T) train $*"; python -m ecg_core train --out data/models "$@" 2>&1 | grep -v -E "cpu_feature|oneDNN|UserWarning|data_adapter"; }
run --arch ecgnet --dataset data/waveform --split recordwise --epochs 14 --cap-per-class 6000 --patience 4
run --arch ecgnet --dataset data/waveform --split beatwise --epochs 14 --cap-per-class 8000 --patience 4
run --arch ecgnet --dataset data/spectral --split recordwise --epochs 10 --cap-per-class 6000 --patience 4
for split in recordwise beatwise; do
  for arch in shallow_cnn deep_cnn cnn_lstm cnn_gru_attention; do
    run --arch $arch --dataset data/waveform --split $split --epochs 4 --cap-per-class 700 --patience 2
  done
done
run --arch ecgnet --dataset data/spectral --split beatwise --epochs 10 --cap-per-class 6000 --patience 4
echo "=== $(date +%T) done"
