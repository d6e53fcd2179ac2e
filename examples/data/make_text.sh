#!/usr/bin/env bash
# Writes the character language model's data set (examples/data/text) into DIR: train.txt (about 100 KB) and
# test.txt (about 20 KB) of made-up English sentences, "the small dog sees a red ball." and the like, words drawn
# from short lists. The random numbers are our own (Park-Miller), so every awk writes the same files.
# Usage: make_text.sh DIR
set -euo pipefail
dir=$1
mkdir -p "$dir"
awk -v dir="$dir" '
  function uniform() { state = (state * 16807) % 2147483647; return state / 2147483647 }
  function pick(list,   words, n) { n = split(list, words, " "); return words[int(uniform() * n) + 1] }
  function sentence() {
    return pick("the a one every that") " " pick("small big old young quiet happy red green") " " \
           pick("dog cat bird fox child farmer teacher robot") " " pick("sees finds likes follows paints carries") \
           " " pick("the a one every that") " " pick("red blue shiny wooden tiny heavy") " " \
           pick("ball box tree house book stone river apple") "."
  }
  function write(file, bytes,   text) {
    text = ""
    while (length(text) < bytes) text = text sentence() (uniform() < 0.2 ? "\n" : " ")
    printf "%s\n", text > file
    close(file)
  }
  BEGIN { state = 20261206; write(dir "/train.txt", 100000); write(dir "/test.txt", 20000) }'
