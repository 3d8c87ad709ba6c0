build-asan/tests/test_sentiment.o: tests/test_sentiment.c \
 common/sentiment.h tests/test_suites.h build-asan/tests/suites.inc
common/sentiment.h:
tests/test_suites.h:
build-asan/tests/suites.inc:
