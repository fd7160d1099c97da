#!/usr/bin/env bash
# Builds the self-contained CLI for the GPU host (no dotnet there; libtorch comes from its python3 torch) into
# .publish/safecode-linux-x64.tar.xz, the folder that device runs carry.
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf /tmp/safecode-publish
dotnet publish src/SafeCoDe.Cli -c Release -r linux-x64 --self-contained -p:SafeCoDeTorchBackend=external -o /tmp/safecode-publish/safecode -v q
mkdir -p .publish
tar cJf .publish/safecode-linux-x64.tar.xz -C /tmp/safecode-publish safecode
ls -la .publish
