/**
 * @file walk_bench.c
 * @brief The ceiling of the columnar read path: records/s of hw_records_columns alone.
 *
 * Builds one batch like report_embedded.py section 3 reads (8621 records of 100-byte values,
 * null keys, no headers: one ~1 MiB fetch) in memory, then walks it into preallocated columns
 * `reps` times (argv[1]; argv[2] sets the record count). A second figure allocates the six columns per walk (malloc, first touch, free),
 * as a read that does not reuse them pays. Compare with consume_batch's records/s to see the
 * share of per-call Python and allocation.
 *
 *     python bench/walk_bench.py            # compiles this with cc -O3 and runs it
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "hw_batch.h"
#include "hw_crc32c.h"

#define RECORDS_DEFAULT 8621
#define WIDTH 100

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    long reps = argc > 1 ? atol(argv[1]) : 400;
    const size_t RECORDS = argc > 2 ? (size_t)atol(argv[2]) : RECORDS_DEFAULT;
    hw_crc32c_init();
    size_t cap = (size_t)RECORDS * (WIDTH + 32) + HW_BATCH_HEADER_SIZE;
    uint8_t *buf = malloc(cap);
    uint8_t *values = calloc(RECORDS, WIDTH);
    int64_t *cols = malloc(6 * RECORDS * sizeof(int64_t));
    if (!buf || !values || !cols) return 1;
    for (size_t i = 0; i < (size_t)RECORDS * WIDTH; i++) values[i] = 'x';
    hw_batch_writer w;
    if (hw_batch_begin(&w, buf, cap, 0, 0, 0, 1, 0, 0, 1700000000000) != HW_OK) return 1;
    if (hw_batch_write_fixed(&w, values, WIDTH, RECORDS, 1700000000000) != HW_OK) return 1;
    size_t size = hw_batch_finish(&w);
    const uint8_t *p = buf + HW_BATCH_HEADER_SIZE, *end = buf + size;
    int64_t check = 0;
    size_t kept = 0;
    double best_walk = 1e9, best_alloc = 1e9;
    for (int round = 0; round < 5; round++) {
        double t = now();
        for (long r = 0; r < reps; r++) {
            if (hw_records_columns(p, end, RECORDS, 0, 1700000000000, -1, 0, buf, cols,
                                   cols + RECORDS, cols + 2 * RECORDS, cols + 3 * RECORDS,
                                   cols + 4 * RECORDS, cols + 5 * RECORDS, &kept) != HW_OK)
                return 2;
            check += cols[5 * RECORDS + kept - 1] + cols[RECORDS - 1];
        }
        double dt = now() - t;
        if (dt < best_walk) best_walk = dt;
        t = now();
        for (long r = 0; r < reps; r++) {
            int64_t *c[6];
            for (int j = 0; j < 6; j++) c[j] = malloc(RECORDS * sizeof(int64_t));
            if (hw_records_columns(p, end, RECORDS, 0, 1700000000000, -1, 0, buf, c[0], c[1],
                                   c[2], c[3], c[4], c[5], &kept) != HW_OK)
                return 2;
            check += c[5][kept - 1] + c[0][RECORDS - 1];
            for (int j = 0; j < 6; j++) free(c[j]);
        }
        dt = now() - t;
        if (dt < best_alloc) best_alloc = dt;
    }
    double n = (double)RECORDS * reps;
    printf("walk %.1f M rec/s (%.2f ns/rec)  walk+malloc %.1f M rec/s  (%zu B batch, check %lld)\n",
           n / best_walk / 1e6, best_walk / n * 1e9, n / best_alloc / 1e6, size,
           (long long)check);
    free(cols);
    free(values);
    free(buf);
    return 0;
}
