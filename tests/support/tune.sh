# The small search of the tune tests: a model with a width variable
# (tune_model FILE) and a search over it (search FILE DATA [extra members]).
# Needs $work (support/harness.sh).
tune_model() {
    cat > "$1" <<'EOF2'
input 4
dense ${width:-8}
relu
dense 3
loss cross_entropy
EOF2
}
search() { # search FILE DATA [extra members]
    cat > "$1" <<EOF2
{
  "model": "$work/m.nn", "data": "csv:$2", "val_split": 0.2, "metric": "val_acc",
  "trials": 9, "seed": 3, "min_epochs": 1, "max_epochs": 9, "eta": 3,
  "space": {
    "lr": {"log_uniform": [0.001, 0.1]},
    "batch": {"choice": [16, 32]},
    "optim": {"choice": ["adam", "sgd"]},
    "width": {"choice": [4, 8, 16]}${3:-}
  }
}
EOF2
}
