#!/usr/bin/env bash
echo "[bed] images.sh: TODO"
