#!/usr/bin/env bash
# Makes sure the PostgreSQL and RabbitMQ this project tests against are up on localhost.
# On the development machines both are started before a session; this only starts one that
# has stopped, with the machine's own start command, and waits until it answers.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
    local name=$1 port=$2
    for _ in $(seq 1 60); do
        port_open "$port" && return 0
        sleep 1
    done
    echo "error: $name is not answering on 127.0.0.1:$port; start it and retry" >&2
    exit 1
}

if ! port_open 5432; then
    echo "PostgreSQL is down; starting it"
    if command -v pg_ctlcluster >/dev/null; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    fi
    wait_port PostgreSQL 5432
fi
if ! port_open 5672; then
    echo "RabbitMQ is down; starting it"
    command -v rabbitmq-server >/dev/null && rabbitmq-server -detached || true
    wait_port RabbitMQ 5672
fi
