/*
 * framelimits.c - see framelimits.h.
 */
#define COBJMACROS
#include "framelimits.h"

#include "bounds.h"
#include "shmcom/proxystub.h"
#include "tsupport.h"

#include <stdlib.h>
#include <string.h>

/* The fixed part of a method's request or reply, as the variable data
 * after it starts (8-aligned): what the frames below add up from. */
static uint32_t fixed8(const char *method, bool reply)
{
    const ShmInterfaceInfo *info = NULL;
    for (uint32_t i = 0; i < calltest_ProxyFileInfo.ninterfaces; i++)
        if (IsEqualIID(calltest_ProxyFileInfo.interfaces[i]->iid, &IID_ICallee))
            info = calltest_ProxyFileInfo.interfaces[i];
    assert_non_null(info);
    for (uint32_t m = 3; m < info->nmethods; m++) {
        if (!strcmp(info->methods[m].name, method)) {
            uint32_t n = reply ? info->methods[m].out_size : info->methods[m].in_size;
            return (n + 7) & ~7u;
        }
    }
    fail_msg("no method %s", method);
    return 0;
}

void framelimits_check(ICallee *p)
{
    const uint32_t max = SHMC_MAX_FRAME;
    unsigned char *buf = malloc(max);
    assert_non_null(buf);

    /* [out] array: the caller's buffer, filled over there; its room in the
     * reply counts, whatever the request's size */
    ULONG n = max - fixed8("Fill", true);
    buf[n - 1] = 0;
    assert_hr(ICallee_Fill(p, n, buf), S_OK);
    assert_int_equal(buf[0], 1);
    assert_int_equal(buf[n - 1], (BYTE)((n - 1) * 3 + 1));
    buf[0] = 0x55;
    assert_hr(ICallee_Fill(p, n + 1, buf), E_INVALIDARG); /* nothing sent */
    assert_int_equal(buf[0], 0);                          /* [out] zeroed */

    /* [in] array */
    ULONG k = (max - fixed8("Sum", false)) / sizeof(LONG);
    memset(buf, 0, max);
    ((LONG *)buf)[k - 1] = 7;
    hyper total = 0;
    assert_hr(ICallee_Sum(p, k, (const LONG *)buf, &total), S_OK);
    assert_int_equal(total, 7);
    assert_hr(ICallee_Sum(p, k + 1, (const LONG *)buf, &total), E_INVALIDARG);
    assert_int_equal(total, 0);

    /* [in] string and the [out] string the callee makes of it ("re: " +
     * text): the reply is the larger, so the callee's side refuses first */
    size_t echo_max = max - fixed8("Echo", true) - 5; /* "re: ", NUL */
    memset(buf, 'x', max);
    buf[echo_max] = '\0';
    char *copy = NULL;
    assert_hr(ICallee_Echo(p, (const char *)buf, &copy), S_OK);
    assert_non_null(copy);
    assert_int_equal(strlen(copy), echo_max + 4);
    ShmCoTaskMemFree(copy);
    buf[echo_max] = 'x';
    buf[echo_max + 1] = '\0';
    copy = (char *)buf;
    assert_hr(ICallee_Echo(p, (const char *)buf, &copy), RPC_E_SERVER_CANTMARSHAL_DATA);
    assert_null(copy);
    /* a request exactly at the limit still reaches the callee */
    size_t in_max = max - fixed8("Echo", false) - 1;
    buf[echo_max + 1] = 'x';
    buf[in_max] = '\0';
    assert_hr(ICallee_Echo(p, (const char *)buf, &copy), RPC_E_SERVER_CANTMARSHAL_DATA);
    buf[in_max] = 'x';
    buf[in_max + 1] = '\0';
    assert_hr(ICallee_Echo(p, (const char *)buf, &copy), E_INVALIDARG);
    assert_null(copy);
    free(buf);

    /* an array the callee allocates: one element past what a reply holds */
    ULONG count = 5;
    LONG *made = (LONG *)&count;
    ULONG too_many = (max - fixed8("MakeArray", true)) / sizeof(LONG) + 1;
    assert_hr(ICallee_MakeArray(p, too_many, &count, &made), RPC_E_SERVER_CANTMARSHAL_DATA);
    assert_null(made);
    assert_int_equal(count, 0);

    /* and the proxy goes on as before */
    assert_hr(ICallee_Null(p), S_OK);
    assert_hr(ICallee_MakeArray(p, 3, &count, &made), S_OK);
    assert_int_equal(made[2], 4);
    ShmCoTaskMemFree(made);
}
