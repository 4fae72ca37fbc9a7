/* A kernel call as data: what csrc/program.pyx replays (cygrad.compile's native tier).
 *
 * Each kernel family that offers replayable kernels defines, next to its Python entry points,
 * an `exec` function per kernel taking one cg_instr: the same internal C functions the entry
 * point calls, on the same operands, so a replay has eager's bits. The family exports them as
 * PyCapsules named CG_EXEC_CAPSULE in a module dict `EXEC` (name -> capsule). A program holds
 * the instructions and the arrays; before each run it writes every operand's address into
 * p[], from the slots the instruction names, after checking each array bound to a slot.
 *
 * The exec functions run with the GIL held (a program holds it from its first kernel to its
 * last), return 0, or -1 with a Python exception set.
 *
 * A family may also export pair exec functions (capsules named CG_EXEC_PAIR_CAPSULE, dict
 * `EXEC_PAIR`): two instructions of that kernel that neither read nor write what the other
 * writes, run at once, each on a thread of its own (a layer's two gradient products). A
 * program marks the first of such a pair `with_next` (program.pyx checks the independence).
 */
#ifndef CYGRAD_PROGRAM_H
#define CYGRAD_PROGRAM_H

#define CG_OPERANDS 6
#define CG_SIZES 6
#define CG_EXEC_CAPSULE "cygrad.exec"
#define CG_EXEC_PAIR_CAPSULE "cygrad.exec_pair"

typedef struct cg_instr cg_instr;
typedef int (*cg_exec)(cg_instr *);
typedef int (*cg_exec_pair)(cg_instr *, cg_instr *);

struct cg_instr {
    cg_exec run;
    int kind;                   /* 1 float32, 2 float64 (arrays.pxd's F32 / F64) */
    int threads;                /* the thread count the eager call would be handed */
    int code;                   /* per kernel: an activation, transposes, a reduction */
    int slot[CG_OPERANDS];      /* the program's slot of each operand (-1: none) */
    char *p[CG_OPERANDS];       /* their addresses for this run */
    Py_ssize_t n[CG_SIZES];     /* sizes, per kernel */
    double x;                   /* a parameter: an activation's slope */
    const double *s;            /* the scalars of this run (an optimizer's lr, ...) */
    cg_exec_pair pair;          /* the kernel's pair exec function, or NULL */
    int with_next;              /* run at once with the next instruction, through pair */
};

#endif
