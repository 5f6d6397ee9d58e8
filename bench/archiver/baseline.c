/* The archiver benchmark's ceiling: a plain librdkafka consumer that gzips every record to a
 * file, with nothing else (no batching, no objects, no commits). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <zlib.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: baseline BOOTSTRAP TOPIC PARTITIONS RECORDS OUT.gz\n");
        return 2;
    }
    const char *bootstrap = argv[1], *topic = argv[2], *out = argv[5];
    int partitions = (int)strtol(argv[3], NULL, 10);
    long long want = strtoll(argv[4], NULL, 10);
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err) ||
        rd_kafka_conf_set(conf, "group.id", "sluice-bench-baseline", err, sizeof err) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err)) {
        fprintf(stderr, "baseline: %s\n", err);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "baseline: %s\n", err);
        return 1;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(list, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    gzFile gz = gzopen(out, "wb6");
    if (!gz) {
        fprintf(stderr, "baseline: cannot open %s\n", out);
        return 1;
    }
    double t0 = now_s();
    long long n = 0, bytes = 0;
    while (n < want) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
        if (!m)
            continue;
        if (!m->err) {
            gzwrite(gz, m->payload, (unsigned)m->len);
            gzputc(gz, '\n');
            n++;
            bytes += (long long)m->len + 1;
        }
        rd_kafka_message_destroy(m);
    }
    gzclose(gz);
    double dt = now_s() - t0;
    printf("%lld %lld %.3f\n", n, bytes, dt);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return 0;
}
