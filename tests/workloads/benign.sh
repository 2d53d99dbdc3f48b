#!/bin/bash
# Ordinary activity of a build host or a server, run under mamori with the
# default rules by tests/tests/e2e/benign.rs: none of it may raise an alert.
# Runs in the directory given as $1; a loopback web server on port $2.
set -euo pipefail
cd "$1"
port="$2"

# Build a small program with make and the C compiler, and run it.
mkdir -p hello && cd hello
cat > hello.c <<'C'
#include <stdio.h>
int main(void) { printf("hello\n"); return 0; }
C
printf 'hello: hello.c\n\tcc -O2 -o hello hello.c\n' > Makefile
make -s
./hello > /dev/null
cd ..

# Package queries.
dpkg -l bash > /dev/null
dpkg -S /bin/ls > /dev/null
apt-cache policy bash > /dev/null
dpkg-query -W -f '${Version}\n' coreutils > /dev/null

# git: a repository, commits, a branch, history.
git init -q repo && cd repo
git config user.name "Benign User" && git config user.email benign@example.invalid
cp ../hello/hello.c . && git add hello.c && git commit -q -m "add hello"
echo '/* more */' >> hello.c && git commit -q -am "more"
git checkout -q -b feature && git log --oneline > /dev/null && git diff HEAD~1 > /dev/null
git checkout -q - && git status --short > /dev/null
cd ..

# Archives.
tar czf src.tar.gz hello repo
mkdir -p unpacked && tar xzf src.tar.gz -C unpacked
zip -qr src.zip hello && unzip -qo src.zip -d unzipped 2> /dev/null || true
xz -k hello/hello.c && xz -dc hello/hello.c.xz > /dev/null
sha256sum src.tar.gz > src.sha256 && sha256sum -c src.sha256 > /dev/null

# A loopback web server and a client.
mkdir -p www && echo '<h1>ok</h1>' > www/index.html
python3 -m http.server "$port" --bind 127.0.0.1 --directory www > /dev/null 2>&1 &
server=$!
for _ in $(seq 50); do
  curl -fsS "http://127.0.0.1:$port/" > /dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/index.html" > /dev/null
kill "$server"; wait "$server" 2> /dev/null || true

# Log rotation of an application log.
mkdir -p logs && for i in $(seq 100); do echo "line $i" >> logs/app.log; done
cat > logrotate.conf <<CONF
$PWD/logs/app.log {
  rotate 3
  compress
  missingok
}
CONF
logrotate -f -s "$PWD/logrotate.state" logrotate.conf

# Cron-like jobs: run-parts over a job directory, clean old files.
mkdir -p jobs.d
printf '#!/bin/sh\ndate > "%s/last-run"\n' "$PWD" > jobs.d/stamp && chmod +x jobs.d/stamp
run-parts jobs.d
find . -name '*.tmp' -mtime +7 -delete

# Everyday commands.
ps aux > /dev/null
ls -la /etc > /dev/null
id > /dev/null && whoami > /dev/null && uname -a > /dev/null
getent passwd root > /dev/null
grep -c root /etc/passwd > /dev/null
sort /etc/services | uniq | wc -l > /dev/null
cp -r hello hello-copy && mv hello-copy hello-moved && rm -rf hello-moved
echo done
