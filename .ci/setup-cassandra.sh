#!/usr/bin/env bash
# Cassandra test node: Java 17 + Maven, then cassandra-all 5.0.x and its runtime jars resolved
# from Maven Central into .cache/cassandra/lib (skipped when already there). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
POM=scripts/cassandra/pom.xml
LIB=.cache/cassandra/lib
VERSION=$(sed -n 's:.*<cassandra.version>\(.*\)</cassandra.version>.*:\1:p' "$POM")
STAMP="$LIB/.resolved-$VERSION"

need=()
ls /usr/lib/jvm/java-17-openjdk*/bin/java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need+=(maven)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ -e "$STAMP" ]; then
    echo "Cassandra $VERSION jars already in $LIB"
    exit 0
fi
rm -rf "$LIB"
mkdir -p "$LIB"
mvn -B -q -f "$POM" dependency:copy-dependencies \
    -DoutputDirectory="$PWD/$LIB" -DincludeScope=runtime
test -e "$LIB/cassandra-all-$VERSION.jar"
touch "$STAMP"
echo "Cassandra $VERSION: $(ls "$LIB" | wc -l) jars in $LIB"
