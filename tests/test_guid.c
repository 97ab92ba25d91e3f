/*
 * test_guid.c - GUID formatting, parsing and ordering.
 */
#include "tsupport.h"

#include <string.h>

static const GUID sample = {
    0x01234567, 0x89ab, 0xcdef, {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}};

static void format_known(void **state)
{
    (void)state;
    char buf[SHM_GUID_STRING_CHARS];
    assert_int_equal(ShmStringFromGUID2(&IID_IStream, buf, sizeof(buf)), 39);
    assert_string_equal(buf, "{0000000C-0000-0000-C000-000000000046}");
    assert_int_equal(ShmStringFromGUID2(&sample, buf, sizeof(buf)), 39);
    assert_string_equal(buf, "{01234567-89AB-CDEF-0123-456789ABCDEF}");
    assert_int_equal(ShmStringFromGUID2(&GUID_NULL, buf, sizeof(buf)), 39);
    assert_string_equal(buf, "{00000000-0000-0000-0000-000000000000}");
}

static void format_errors(void **state)
{
    (void)state;
    char buf[64];
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(ShmStringFromGUID2(&sample, buf, 38), 0); /* no room for NUL */
    assert_int_equal(buf[0], 'x');                             /* nothing written */
    assert_int_equal(ShmStringFromGUID2(&sample, buf, 0), 0);
    assert_int_equal(ShmStringFromGUID2(&sample, buf, -1), 0);
    assert_int_equal(ShmStringFromGUID2(&sample, NULL, 39), 0);
    assert_int_equal(ShmStringFromGUID2(NULL, buf, 39), 0);
}

static void parse_round_trip(void **state)
{
    (void)state;
    char buf[SHM_GUID_STRING_CHARS];
    GUID g;
    /* a spread of bit patterns */
    for (unsigned i = 0; i < 64; i++) {
        GUID in;
        unsigned char *b = (unsigned char *)&in;
        for (unsigned j = 0; j < sizeof(in); j++)
            b[j] = (unsigned char)(i * 37u + j * 101u + (i ^ j));
        assert_int_equal(ShmStringFromGUID2(&in, buf, sizeof(buf)), 39);
        assert_hr(ShmIIDFromString(buf, &g), S_OK);
        assert_memory_equal(&g, &in, sizeof(g));
    }
}

static void parse_accepts_lower_case(void **state)
{
    (void)state;
    GUID g;
    assert_hr(ShmIIDFromString("{0c733a30-2a1c-11ce-ade5-00aa0044773d}", &g), S_OK);
    assert_true(IsEqualGUID(&g, &IID_ISequentialStream));
    assert_hr(ShmIIDFromString("{0C733A30-2a1c-11CE-ade5-00AA0044773d}", &g), S_OK);
    assert_true(IsEqualGUID(&g, &IID_ISequentialStream));
}

static void parse_null_text_is_guid_null(void **state)
{
    (void)state;
    GUID g;
    memset(&g, 0xab, sizeof(g));
    assert_hr(ShmIIDFromString(NULL, &g), S_OK);
    assert_true(IsEqualGUID(&g, &GUID_NULL));
}

static void parse_rejects_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "{",
        "0000000C-0000-0000-C000-000000000046",     /* no braces */
        "{0000000C-0000-0000-C000-000000000046",    /* no closing brace */
        "0000000C-0000-0000-C000-000000000046}",    /* no opening brace */
        "{0000000C-0000-0000-C000-000000000046}x",  /* trailing text */
        "{0000000C-0000-0000-C000-000000000046} ",  /* trailing space */
        " {0000000C-0000-0000-C000-000000000046}",  /* leading space */
        "{0000000C_0000-0000-C000-000000000046}",   /* wrong separator */
        "{0000000C-0000-0000-C000_000000000046}",   /* wrong separator */
        "{0000000C-0000-0000-C0000-00000000046}",   /* dash moved */
        "{0000000G-0000-0000-C000-000000000046}",   /* not hex */
        "{0000000C-0000-0000-C000-00000000004g}",   /* not hex at the end */
        "{0000000C-+000-0000-C000-000000000046}",   /* sign */
        "{0x00000C-0000-0000-C000-000000000046}",   /* 0x prefix */
        "{0000000C-0000-0000-C000-0000000000046}",  /* one digit too many */
        "{0000000C-0000-0000-C000-00000000046}",    /* one digit short */
        "(0000000C-0000-0000-C000-000000000046)",   /* wrong brackets */
        "{0000000C-0000-0000-C000-000000000046}\n", /* newline */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        GUID g;
        memset(&g, 0xab, sizeof(g));
        HRESULT hr = ShmIIDFromString(bad[i], &g);
        if (hr != E_INVALIDARG)
            fail_msg("\"%s\" gave 0x%08x", bad[i], (unsigned)hr);
        assert_true(IsEqualGUID(&g, &GUID_NULL)); /* no half-parsed result */
    }
    assert_hr(ShmIIDFromString("{0000000C-0000-0000-C000-000000000046}", NULL), E_INVALIDARG);
}

static void compare_orders(void **state)
{
    (void)state;
    GUID a = sample, b = sample;
    assert_int_equal(ShmCompareGUID(&a, &b), 0);
    b.Data1++;
    assert_true(ShmCompareGUID(&a, &b) < 0);
    assert_true(ShmCompareGUID(&b, &a) > 0);
    b = sample;
    b.Data2 = 0xffff; /* Data2 compared as a number, not as bytes */
    a.Data2 = 0x0100;
    assert_true(ShmCompareGUID(&a, &b) < 0);
    a = b = sample;
    b.Data4[7]++;
    assert_true(ShmCompareGUID(&a, &b) < 0);
    a.Data1 = 0x00000001;
    b.Data1 = 0x00000100;
    b.Data4[0] = 0;
    assert_true(ShmCompareGUID(&a, &b) < 0);
    assert_true(ShmCompareGUID(&GUID_NULL, &IID_IUnknown) < 0);
}

int main(int argc, char **argv)
{
    tsupport_dispatch_child(argc, argv, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(format_known),
        cmocka_unit_test(format_errors),
        cmocka_unit_test(parse_round_trip),
        cmocka_unit_test(parse_accepts_lower_case),
        cmocka_unit_test(parse_null_text_is_guid_null),
        cmocka_unit_test(parse_rejects_malformed),
        cmocka_unit_test(compare_orders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
