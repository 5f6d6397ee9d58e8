#!/usr/bin/env bash
# The official image's tool of that name: lists the API versions a broker answers (health checks).
exec java -Xmx128m -XX:TieredStopAtLevel=1 -cp '/opt/kafka/libs/*' \
  org.apache.kafka.tools.BrokerApiVersionsCommand "$@"
