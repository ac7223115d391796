/* The double-precision half of `nabla gradcheck` (see gradcheck.c). */
int gradcheck_main(int argc, char **argv);

int main(int argc, char **argv) { return gradcheck_main(argc, argv); }
