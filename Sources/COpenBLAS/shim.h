#include <cblas.h>
/* OpenBLAS extensions; declared here so that any cblas.h works. */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_corename(void);
