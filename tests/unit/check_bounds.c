#include "unit.h"
Suite *bounds_suite(void)
{
    Suite *s = suite_create("bounds");
    return s;
}
