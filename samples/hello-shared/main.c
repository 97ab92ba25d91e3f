/*
 * hello-shared - two processes, one block of shared memory.
 *
 * The writer creates a named region, puts a message and a block of data in
 * it, starts a reader process and tells it the region's name on the command
 * line. The reader maps the region by name, reads everything in place (no
 * copy through a pipe or socket), checks it, writes its answer into the
 * same memory and wakes the writer. The writer prints the answer and
 * removes the name.
 *
 *   hello-shared            run the writer (which starts the reader)
 *   hello-shared --reader NAME
 */
#include "platform.h"

#include <stdio.h>
#include <string.h>

/* The region's layout: two wait words, then the message, then the data. */
typedef struct hello_layout {
    shmc_plat_wword ready;  /* writer -> reader: 1 when the data is there */
    shmc_plat_wword answer; /* reader -> writer: 1 when the reply is there */
    uint32_t data_len;
    uint32_t checksum;
    char message[64];
    char reply[128];
    unsigned char data[]; /* data_len bytes */
} hello_layout;

#define DATA_LEN (1u << 20)
#define WAIT_MS  30000u

static uint32_t checksum(const unsigned char *p, uint32_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (uint32_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static int fail(const char *what, HRESULT hr)
{
    const char *name = ShmHresultName(hr);
    fprintf(stderr, "hello-shared: %s failed: 0x%08x %s\n", what, (unsigned)hr, name ? name : "");
    return 1;
}

static int reader(const char *name)
{
    shmc_plat_region r;
    shmc_plat_waiter ready, answer;
    HRESULT hr = shmc_plat_region_open(&r, name);
    if (FAILED(hr))
        return fail("open", hr);
    hello_layout *h = r.base;
    shmc_plat_waiter_open(&ready, &r, offsetof(hello_layout, ready));
    shmc_plat_waiter_open(&answer, &r, offsetof(hello_layout, answer));
    while (atomic_load(&h->ready.value) == 0) {
        if (shmc_plat_wait(&ready, 0, WAIT_MS) == S_FALSE)
            return fail("wait for data", RPC_E_TIMEOUT);
    }
    /* The writer is trusted here, but a length from shared memory is still
     * checked against the mapping before it is used. */
    uint32_t len = h->data_len;
    if (len > r.size - sizeof(*h))
        return fail("data length", RPC_E_INVALID_DATA);
    bool ok = checksum(h->data, len) == h->checksum;
    char message[sizeof(h->message)];
    memcpy(message, h->message, sizeof(message));
    message[sizeof(message) - 1] = '\0';
    snprintf(h->reply, sizeof(h->reply), "got \"%s\", read %u bytes, checksum %s", message,
             (unsigned)len, ok ? "ok" : "WRONG");
    atomic_store(&h->answer.value, 1);
    shmc_plat_wake(&answer, false);
    shmc_plat_waiter_close(&ready);
    shmc_plat_waiter_close(&answer);
    shmc_plat_region_close(&r);
    return ok ? 0 : 1;
}

static int writer(void)
{
    char name[64], exe[4096];
    shmc_plat_region r;
    shmc_plat_waiter ready, answer;
    shmc_plat_proc child;
    shmc_plat_procid self;
    HRESULT hr;
    int rc = 1;

    shmc_plat_proc_self(&self);
    snprintf(name, sizeof(name), "hello-%llu", (unsigned long long)self.pid);
    hr = shmc_plat_region_create(&r, name, sizeof(hello_layout) + DATA_LEN);
    if (FAILED(hr))
        return fail("create", hr);
    hello_layout *h = r.base;
    shmc_plat_waiter_open(&ready, &r, offsetof(hello_layout, ready));
    shmc_plat_waiter_open(&answer, &r, offsetof(hello_layout, answer));
    printf("writer: created region \"%s\" (%zu bytes)\n", name, r.size);

    snprintf(h->message, sizeof(h->message), "hello from process %llu",
             (unsigned long long)self.pid);
    for (uint32_t i = 0; i < DATA_LEN; i++)
        h->data[i] = (unsigned char)(i * 2654435761u >> 24);
    h->data_len = DATA_LEN;
    h->checksum = checksum(h->data, DATA_LEN);
    atomic_store(&h->ready.value, 1);

    hr = shmc_plat_self_exe(exe, sizeof(exe));
    if (FAILED(hr)) {
        fail("self_exe", hr);
        goto out;
    }
    const char *argv[] = {exe, "--reader", name, NULL};
    hr = shmc_plat_proc_spawn(&child, argv);
    if (FAILED(hr)) {
        fail("spawn", hr);
        goto out;
    }
    shmc_plat_wake(&ready, false);
    uint64_t t0 = shmc_plat_clock_ns();
    while (atomic_load(&h->answer.value) == 0) {
        /* stop waiting if the reader dies without answering */
        if (shmc_plat_proc_wait(&child, 0) == S_OK)
            break;
        shmc_plat_wait(&answer, 0, 100);
        if (shmc_plat_clock_ns() - t0 > (uint64_t)WAIT_MS * 1000000u)
            break;
    }
    if (atomic_load(&h->answer.value) == 1) {
        char reply[sizeof(h->reply)];
        memcpy(reply, h->reply, sizeof(reply));
        reply[sizeof(reply) - 1] = '\0';
        printf("reader answered: %s\n", reply);
    } else {
        printf("reader did not answer\n");
    }
    if (shmc_plat_proc_wait(&child, WAIT_MS) != S_OK) {
        shmc_plat_proc_kill(&child);
        shmc_plat_proc_wait(&child, WAIT_MS);
    }
    printf("reader exited with code %d\n", child.exit_code);
    rc = child.exit_code == 0 && atomic_load(&h->answer.value) == 1 ? 0 : 1;
    shmc_plat_proc_close(&child);
out:
    shmc_plat_waiter_close(&ready);
    shmc_plat_waiter_close(&answer);
    shmc_plat_region_close(&r);
    shmc_plat_region_unlink(name);
    printf("writer: removed \"%s\"; %s\n", name, rc == 0 ? "done" : "FAILED");
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--reader"))
        return reader(argv[2]);
    if (argc != 1) {
        fprintf(stderr, "usage: hello-shared [--reader NAME]\n");
        return 2;
    }
    return writer();
}
