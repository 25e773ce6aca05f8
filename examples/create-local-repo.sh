#!/usr/bin/env bash
# Creates a tiny git repository to build from, without network access:
#   examples/create-local-repo.sh [path]   (default /tmp/blacktree-examples/hello)
# Branch `main`, one commit: a Dockerfile (FROM scratch + COPY hello.txt /), hello.txt, app/.
# Any old repository at that path is removed first. Prints the path.
set -euo pipefail

repo="${1:-/tmp/blacktree-examples/hello}"
case "$repo" in
  "" | "/") echo "refusing to use '$repo' as the repository path" >&2; exit 2 ;;
esac

rm -rf -- "$repo"
mkdir -p -- "$repo/app"
cd -- "$repo"

git init --quiet
git symbolic-ref HEAD refs/heads/main  # whatever init.defaultBranch says
git config user.name "Blacktree Examples"
git config user.email "examples@blacktree.invalid"
git config commit.gpgsign false

printf 'FROM scratch\nCOPY hello.txt /\n' > Dockerfile
printf 'hello from blacktree\n' > hello.txt
printf '# app\n\nThe application sources would live here.\n' > app/README.md

git add -A
git commit --quiet -m "Hello example"
pwd
