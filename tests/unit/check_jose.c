#include "unit.h"
Suite *jose_suite(void)
{
    Suite *s = suite_create("jose");
    return s;
}
