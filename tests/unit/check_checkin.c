#include "unit.h"
Suite *checkin_suite(void)
{
    Suite *s = suite_create("checkin");
    return s;
}
