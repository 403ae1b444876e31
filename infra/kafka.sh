#!/usr/bin/env bash
# A real single-node Apache Kafka (KRaft, broker+controller in one JVM) for
# local development and tests, run from jars resolved by Maven: this project's
# machines have Java and Maven but no Docker, and Maven Central is reachable.
#
#   infra/kafka.sh fetch    resolve the broker jars into .cache/kafka-<version>/libs
#   infra/kafka.sh start    format a fresh log dir and start the broker in the background
#   infra/kafka.sh stop     stop the broker started by `start` (by its PID)
#   infra/kafka.sh status   say whether it runs
#   infra/kafka.sh topics   create the contract topics (KPI_TOPIC_PREFIX, KPI_PARTITIONS)
#   infra/kafka.sh bootstrap  print host:port of the running broker
#   infra/kafka.sh clean    stop, then delete .run/kafka
#
# Environment: KAFKA_PORT (19092), KAFKA_CONTROLLER_PORT (19093), MAVEN_REPO_LOCAL
# (Maven's local repository, default ~/.m2/repository),
# KAFKA_HEAP (768m), KAFKA_START_TIMEOUT seconds (60), KAFKA_KEEP_DATA=1 to
# reuse the previous log dir instead of starting from an empty cluster.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=proc.sh
source "$HERE/proc.sh"
ROOT="$(cd "$HERE/.." && pwd)"
POM="$HERE/kafka/pom.xml"

# The version lives only in the pom; read it from there.
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -n1)"
if [[ -z "$KAFKA_VERSION" ]]; then
    echo "kafka.sh: no <kafka.version> in $POM" >&2
    exit 1
fi
CACHE_DIR="$ROOT/.cache/kafka-$KAFKA_VERSION"
LIBS="$CACHE_DIR/libs"
# The stamp holds a hash of the pom, so changing any pinned version (not only
# Kafka's) makes the next fetch resolve again.
STAMP="$CACHE_DIR/.complete"

RUN_DIR="$ROOT/.run/kafka"
DATA_DIR="$RUN_DIR/data"
PID_FILE="$RUN_DIR/kafka.pid"
PROPS="$RUN_DIR/server.properties"
LOG4J="$RUN_DIR/log4j2.properties"
LOG_FILE="$RUN_DIR/server.log"

KAFKA_PORT="${KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
KAFKA_HEAP="${KAFKA_HEAP:-768m}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
BOOTSTRAP="127.0.0.1:$KAFKA_PORT"

PY="$ROOT/.venv/bin/python"
# python -m stream_app... resolves the package from the working directory, so
# the script works whether or not the project is installed in .venv yet.
cd "$ROOT"

die() {
    echo "kafka.sh: $*" >&2
    exit 1
}

# Missing tools are installed from Debian when apt-get is there (a new machine
# or CI must work unattended); otherwise the message says what to install.
need_java() {
    command -v java >/dev/null 2>&1 && return 0
    "$HERE/apt.sh" ensure java openjdk-17-jre-headless ||
        die "java not found. Kafka $KAFKA_VERSION needs Java 17+: apt-get install openjdk-17-jre-headless"
}

need_mvn() {
    command -v mvn >/dev/null 2>&1 && return 0
    "$HERE/apt.sh" ensure mvn maven ||
        die "mvn not found; it resolves the Kafka jars from Maven Central: apt-get install maven openjdk-17-jdk-headless"
}

need_python() {
    [[ -x "$PY" ]] || die "$PY not found: run 'make install' first (it creates .venv with aiokafka)"
}

pom_hash() {
    sha256sum "$POM" | cut -d' ' -f1
}

cache_complete() {
    [[ -f "$STAMP" && "$(cat "$STAMP")" == "$(pom_hash)" ]] &&
        compgen -G "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null
}

cmd_fetch() {
    if cache_complete; then
        return 0
    fi
    need_java
    need_mvn
    local m2="${MAVEN_REPO_LOCAL:-$HOME/.m2/repository}"
    # -C (--strict-checksums): a jar whose .sha1/.md5 from Maven Central does not match fails
    # the fetch; by default Maven only warns and runs what it downloaded.
    local mvn=(mvn -q -B -C -f "$POM")
    if [[ -n "${MAVEN_REPO_LOCAL:-}" ]]; then
        mvn+=("-Dmaven.repo.local=$MAVEN_REPO_LOCAL")
    fi
    local tmp="$CACHE_DIR/libs.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    local t0=$SECONDS ok=0
    # When ~/.m2 already holds the broker a second fetch (e.g. after the
    # cache dir was removed) must not touch the network.
    if [[ -f "$m2/org/apache/kafka/kafka_2.13/$KAFKA_VERSION/kafka_2.13-$KAFKA_VERSION.jar" ]]; then
        if "${mvn[@]}" -o dependency:copy-dependencies -DoutputDirectory="$tmp" \
            >"$CACHE_DIR/mvn.log" 2>&1; then
            ok=1
        else
            echo "kafka.sh: offline resolve from $m2 failed, trying Maven Central" >&2
        fi
    fi
    if [[ $ok == 0 ]]; then
        echo "kafka.sh: resolving Kafka $KAFKA_VERSION jars with Maven (first time only)..." >&2
        if ! "${mvn[@]}" dependency:copy-dependencies -DoutputDirectory="$tmp" \
            >"$CACHE_DIR/mvn.log" 2>&1; then
            tail -n 30 "$CACHE_DIR/mvn.log" >&2
            rm -rf "$tmp"
            die "mvn could not resolve the Kafka jars (full log: $CACHE_DIR/mvn.log)"
        fi
    fi
    # Swap in the complete set at once so an interrupted fetch never leaves a
    # half-filled libs dir that looks usable.
    rm -rf "$LIBS"
    mv "$tmp" "$LIBS"
    pom_hash >"$STAMP"
    echo "kafka.sh: $(find "$LIBS" -name '*.jar' | wc -l) jars in ${LIBS#"$ROOT"/} ($((SECONDS - t0))s)" >&2
}

# PID of the broker we started, if it is still that process.
running_pid() {
    pid_from_file "$PID_FILE" 'kafka\.Kafka'
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

write_config() {
    cat >"$PROPS" <<EOF
# Generated by infra/kafka.sh: single-node KRaft cluster for development and tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA_DIR

# faust creates its changelog/repartition topics itself and relies on this.
auto.create.topics.enable=true
delete.topic.enable=true
num.partitions=4
default.replication.factor=1
min.insync.replicas=1

# One broker: every internal topic must have replication factor 1.
offsets.topic.replication.factor=1
# Fewer offsets partitions than the default 50 make the first consumer group
# join after a fresh start take well under a second.
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# Tests start a consumer group and expect messages at once.
group.initial.rebalance.delay.ms=0

# Tests and replays use event times far in the past; time-based retention
# would delete those records under their feet.
log.retention.ms=-1
log.retention.bytes=-1

num.network.threads=2
num.io.threads=4
EOF

    cat >"$LOG4J" <<EOF
# Generated by infra/kafka.sh: broker logs go to a file, not the terminal.
status = warn
name = kafka
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $LOG_FILE
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
# These two are very chatty at INFO and say nothing useful for a test broker.
logger.controller.name = org.apache.kafka.controller
logger.controller.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
EOF
}

new_cluster_id() {
    # Kafka cluster ids are 16 random bytes in URL-safe base64 without padding;
    # Kafka's own generator avoids a leading '-' (it would read as an option).
    local id
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        id="$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
        if [[ "$id" != -* && ${#id} -eq 22 ]]; then
            echo "$id"
            return 0
        fi
    done
    die "could not generate a cluster id"
}

cmd_start() {
    local pid
    if pid="$(running_pid)"; then
        echo "kafka.sh: Kafka already running (pid $pid) at $(cmd_bootstrap)" >&2
        return 0
    fi
    need_java
    need_python
    for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
        if port_open "$p"; then
            die "port 127.0.0.1:$p is already in use by another process; set KAFKA_PORT/KAFKA_CONTROLLER_PORT, or point KAFKA_BOOTSTRAP_SERVERS at that broker"
        fi
    done
    cmd_fetch

    mkdir -p "$RUN_DIR"
    rm -f "$PID_FILE"
    if [[ "${KAFKA_KEEP_DATA:-0}" != 1 || ! -f "$DATA_DIR/meta.properties" ]]; then
        # A fresh cluster per start, like the Redis next to it: no state leaks
        # from one test run into the next.
        rm -rf "$DATA_DIR"
    fi
    write_config
    : >"$LOG_FILE"

    local cp="$LIBS/*"
    local jvm=(-Xms256m "-Xmx$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
        -Djava.awt.headless=true -Dlog4j2.configurationFile="$LOG4J"
        -Dkafka.logs.dir="$RUN_DIR")
    local t0=$SECONDS
    if [[ ! -f "$DATA_DIR/meta.properties" ]]; then
        if ! java "${jvm[@]}" -cp "$cp" kafka.tools.StorageTool format \
            -t "$(new_cluster_id)" -c "$PROPS" >"$RUN_DIR/format.log" 2>&1; then
            cat "$RUN_DIR/format.log" >&2
            die "formatting the log dir failed"
        fi
    fi

    # setsid: the broker must outlive the shell that started it (make's recipe
    # shell) and not receive that terminal's Ctrl-C. This script has no job
    # control, so setsid execs in place and $! is the JVM's own PID.
    setsid java "${jvm[@]}" -cp "$cp" kafka.Kafka "$PROPS" \
        >"$RUN_DIR/stdout.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PID_FILE"

    if ! "$PY" -m stream_app.kafka.topics --bootstrap "$BOOTSTRAP" \
        --wait "$KAFKA_START_TIMEOUT" --pid "$pid"; then
        echo "kafka.sh: broker did not become ready within ${KAFKA_START_TIMEOUT}s; last log lines:" >&2
        tail -n 20 "$LOG_FILE" "$RUN_DIR/stdout.log" >&2 || true
        cmd_stop || true
        exit 1
    fi
    echo "kafka.sh: Kafka $KAFKA_VERSION ready at $BOOTSTRAP (pid $pid, $((SECONDS - t0))s, log ${LOG_FILE#"$ROOT"/})" >&2
}

cmd_stop() {
    local pid
    if ! pid="$(running_pid)"; then
        rm -f "$PID_FILE"
        echo "kafka.sh: Kafka not running" >&2
        return 0
    fi
    # SIGTERM triggers a controlled shutdown; give it a bounded time.
    stop_pid "kafka.sh: broker" "$pid" 30
    rm -f "$PID_FILE"
    echo "kafka.sh: Kafka stopped (pid $pid)" >&2
}

cmd_status() {
    local pid
    if pid="$(running_pid)"; then
        echo "kafka: running (pid $pid) at $(cmd_bootstrap), version $KAFKA_VERSION"
    else
        echo "kafka: not running"
        return 3
    fi
}

# The address of the running broker, which may have been started with another
# KAFKA_PORT than the caller's environment has now.
cmd_bootstrap() {
    if running_pid >/dev/null && [[ -f "$PROPS" ]]; then
        sed -n 's|^advertised.listeners=PLAINTEXT://||p' "$PROPS"
    else
        echo "$BOOTSTRAP"
    fi
}

cmd_topics() {
    need_python
    KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS:-$BOOTSTRAP}" "$PY" -m stream_app.kafka.topics
}

cmd_clean() {
    cmd_stop
    rm -rf "$RUN_DIR"
}

case "${1:-}" in
    fetch) cmd_fetch ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    topics) cmd_topics ;;
    bootstrap) cmd_bootstrap ;;
    clean) cmd_clean ;;
    version) echo "$KAFKA_VERSION" ;;
    *)
        echo "usage: $0 {fetch|start|stop|status|topics|bootstrap|clean|version}" >&2
        exit 2
        ;;
esac
