/*
 * checker_canary.c - makes one deliberate error of the kind a checker
 * build is there to catch, so that ctest shows the checker still catches
 * it (a sanitizer option or a launcher that silently stopped working would
 * otherwise leave every other test green):
 *
 *   checker_canary race       two threads write one plain int (TSan)
 *   checker_canary overflow   reads one byte past a heap block (ASan,
 *                             memcheck)
 *   checker_canary leak       loses the only pointer to a heap block
 *                             (LeakSanitizer, memcheck)
 *
 * The tests that run it pass only if the checker's report appears in its
 * output (tests/CMakeLists.txt); the program's own exit status is not
 * judged.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int shared_plain; /* written by two threads with nothing between them */

static void *racer(void *arg)
{
    shared_plain += (int)(size_t)arg;
    return NULL;
}

static int race(void)
{
    pthread_t a, b;
    if (pthread_create(&a, NULL, racer, (void *)1) || pthread_create(&b, NULL, racer, (void *)2))
        return 2;
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("sum %d\n", shared_plain);
    return 0;
}

static int overflow(size_t n)
{
    char *volatile p = malloc(n);
    if (!p)
        return 2;
    memset(p, 'x', n);
    char c = p[n]; /* one past the end */
    printf("read %d\n", c);
    free(p);
    return 0;
}

static void *volatile lost;

static int leak(size_t n)
{
    lost = malloc(n);
    if (!lost)
        return 2;
    memset(lost, 'x', n);
    lost = NULL; /* the only pointer to it */
    return 0;
}

int main(int argc, char **argv)
{
    /* sizes from the command line: nothing a compiler can fold away */
    size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 24;
    if (argc > 1 && !strcmp(argv[1], "race"))
        return race();
    if (argc > 1 && !strcmp(argv[1], "overflow"))
        return overflow(n);
    if (argc > 1 && !strcmp(argv[1], "leak"))
        return leak(n);
    fprintf(stderr, "usage: checker_canary race|overflow|leak [bytes]\n");
    return 2;
}
