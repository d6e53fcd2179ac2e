#!/usr/bin/env bash
# Writes the regression example's data set (examples/data/regression) into DIR: train.csv (1000 rows) and
# test.csv (250 rows), eight features x0..x7 uniform in [-1, 1] and a target column y = 3 x0 - 2 x1 + 0.5 x2 +
# 1.5 x5 - x7 + 1 + noise, the noise normal with standard deviation 0.1 (x3, x4 and x6 are irrelevant). The best
# possible R² is about 0.998 (the noise's share of y's variance). The random numbers are our own (Park-Miller),
# so every awk writes the same files.
# Usage: make_regression.sh DIR
set -euo pipefail
dir=$1
mkdir -p "$dir"
awk -v dir="$dir" '
  function uniform() { state = (state * 16807) % 2147483647; return state / 2147483647 }
  function normal() { return sqrt(-2 * log(uniform())) * cos(6.283185307179586 * uniform()) }
  function write(file, rows,   r, i, x, y, line) {
    print "x0,x1,x2,x3,x4,x5,x6,x7,y" > file
    for (r = 0; r < rows; r++) {
      line = ""
      for (i = 0; i < 8; i++) { x[i] = sprintf("%.4f", 2 * uniform() - 1); line = line x[i] "," }
      y = 3 * x[0] - 2 * x[1] + 0.5 * x[2] + 1.5 * x[5] - x[7] + 1 + 0.1 * normal()
      printf "%s%.4f\n", line, y > file
    }
    close(file)
  }
  BEGIN { state = 20261206; write(dir "/train.csv", 1000); write(dir "/test.csv", 250) }'
