/* upm-demo: the demo program of upm, linked against libgreet. */
#include <stdlib.h>
#include "greet.h"

int main(int argc, char **argv) {
    greet(argc > 1 ? argv[1] : "LFS builder");
    return EXIT_SUCCESS;
}
