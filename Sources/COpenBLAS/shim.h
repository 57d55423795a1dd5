#include <cblas.h>
#include <stddef.h>

/* LAPACK's dgeev (eigenvalues and right eigenvectors of a general real matrix). OpenBLAS ships
   LAPACK in libopenblas, but Debian's libopenblas-dev installs no lapack.h/lapacke.h next to
   cblas.h, so the Fortran entry point is declared here (column-major, hidden string lengths last). */
void dgeev_(const char *jobvl, const char *jobvr, const blasint *n, double *a, const blasint *lda,
            double *wr, double *wi, double *vl, const blasint *ldvl, double *vr, const blasint *ldvr,
            double *work, const blasint *lwork, blasint *info, size_t jobvl_len, size_t jobvr_len);

/* LAPACK's zheevd (eigenvalues and eigenvectors of a complex Hermitian matrix, divide and conquer;
   complex*16 as interleaved (re, im) doubles, column-major). */
void zheevd_(const char *jobz, const char *uplo, const blasint *n, double *a, const blasint *lda, double *w,
             double *work, const blasint *lwork, double *rwork, const blasint *lrwork, blasint *iwork,
             const blasint *liwork, blasint *info, size_t jobz_len, size_t uplo_len);
