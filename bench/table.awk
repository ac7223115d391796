# The tables of bench/compare.sh, from its result lines:
#   SIDE RESULT model=M threads=T samples_per_s=X [tokens_per_s=K] ... latency_us=Y ... [params=P]
#   SIDE RESULT sgemm kernel=K n=N threads=T gflops=G core=...
# SIDE is nabla, nabla-openblas (NB_GEMM=openblas), nabla-avx2 (NB_GEMM=avx2,
# on a CPU with AVX-512: nabla as a CPU without it runs), torch2-eager,
# torch2-compile, jax, torch-debian or ort.  Run with -v models="mlp ..."
# (image models: samples/s) and -v seq_models="gru ..." (tokens/s).
# A figure measured in several rounds counts at its best: the highest rate,
# the lowest latency (and the GFLOP/s of the run with the best rate).
function val(line, key,   r) {
    if (match(line, " " key "=[0-9.e+-]+")) {
        r = substr(line, RSTART + length(key) + 2, RLENGTH - length(key) - 2)
        return r + 0
    }
    return -1
}
function word(line, key,   r) {
    if (match(line, " " key "=[^ ]+")) return substr(line, RSTART + length(key) + 2, RLENGTH - length(key) - 2)
    return ""
}
# x is a rate above any kept for this side, model, thread count
function higher(side, m, t, what, x) { return x > 0 && (!((side, m, t, what) in v) || x > v[side, m, t, what]) }
function fig(v) { return v > 0 ? sprintf("%.0f", v) : "-" }
# the best figure of a side for a model: highest rate or lowest latency
function best(side, m, what, lower,   t, b) {
    b = -1; bt[side, m, what] = 0
    for (t = 1; t <= maxt; t++)
        if ((side, m, t, what) in v && (b < 0 || (lower ? v[side, m, t, what] < b : v[side, m, t, what] > b))) {
            b = v[side, m, t, what]; bt[side, m, what] = t
        }
    return b
}
function with_t(side, m, what, lower,   b) {
    b = best(side, m, what, lower)
    return b > 0 ? sprintf("%s (%dt)", lower ? sprintf("%.1f", b) : fig(b), bt[side, m, what]) : "missing"
}
{
    side = $1
    if ($3 == "sgemm") {
        t = val($0, "threads"); g = val($0, "gflops"); k = word($0, "kernel")
        if ((side, k, t) in sg && sg[side, k, t] >= g) next
        sg[side, k, t] = g; sgerr[side, k, t] = word($0, "max_rel_err")
        if (k == "openblas") sgcore[side] = word($0, "core")
        if (k == "nabla" && g > sgpeak[side]) sgpeak[side] = g
        if (t > maxt) maxt = t
        next
    }
    m = word($0, "model"); t = val($0, "threads")
    if (m == "" || t < 1) next
    if (t > maxt) maxt = t
    x = val($0, "samples_per_s")
    if (higher(side, m, t, "sps", x)) {
        v[side, m, t, "sps"] = x
        x = val($0, "gflops"); if (x > 0) v[side, m, t, "gf"] = x
    }
    x = val($0, "latency_us"); if (x > 0 && (!((side, m, t, "lat") in v) || x < v[side, m, t, "lat"])) v[side, m, t, "lat"] = x
    x = val($0, "tokens_per_s"); if (higher(side, m, t, "tps", x)) v[side, m, t, "tps"] = x
    x = val($0, "params"); if (x > 0) params[side, m] = x
}
# The best-thread-count row of a model for rate `what` (sps or tps).
function best_row(m, what,   p, top, who, b, nb, gf) {
    top = -1; who = ""
    for (p = 1; p <= np; p++) { b = best(P[p], m, what, 0); if (b > top) { top = b; who = P[p] } }
    nb = best("nabla", m, what, 0)
    gf = (nb > 0) ? v["nabla", m, bt["nabla", m, what], "gf"] : -1
    printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", m, with_t("nabla", m, what, 0),
        with_t("torch2-eager", m, what, 0), with_t("torch2-compile", m, what, 0),
        with_t("jax", m, what, 0), with_t("torch-debian", m, what, 0),
        (nb > 0 && top > 0) ? sprintf("**%.2f×** (%s)", nb / top, who) : "-",
        (gf > 0 ? sprintf("%.1f", gf) : "-"),
        (gf > 0 && sgpeak["nabla"] > 0) ? sprintf("%.0f%%", 100 * gf / sgpeak["nabla"]) : "-"
}
# Every figure of rate `what` for the models of list M (n of them).
function every_figure(M, n, what,   i, t, s) {
    printf "%-11s %7s", "model", "threads"
    for (s = 1; s <= ns; s++) printf " %15s", S[s]
    printf "\n"
    for (i = 1; i <= n; i++)
        for (t = 1; t <= maxt; t++) {
            printf "%-11s %7d", M[i], t
            for (s = 1; s <= ns; s++) printf " %15s", fig((S[s], M[i], t, what) in v ? v[S[s], M[i], t, what] : -1)
            printf "\n"
        }
}
# The sequence models: tokens/s, and whether every side has nabla's parameter count.
function sequence_tables(   nq, Q, i, s, m, odd) {
    nq = split(seq_models, Q, " ")
    if (nq == 0) return
    print "\nTraining tokens/s (batch 32 × context 16, Adam), the word stream: every figure"
    every_figure(Q, nq, "tps")
    print "\nTraining tokens/s, each side at its best thread count"
    printf "| model | nabla | PyTorch 2.x eager | PyTorch 2.x compile | JAX jit | PyTorch Debian | nabla ÷ best peer | nabla GFLOP/s | ÷ nabla sgemm |\n"
    printf "|---|---|---|---|---|---|---|---|---|\n"
    for (i = 1; i <= nq; i++) best_row(Q[i], "tps")
    for (i = 1; i <= nq; i++) {
        m = Q[i]; odd = ""
        for (s = 2; s <= ns; s++)
            if ((S[s], m) in params && ("nabla", m) in params && params[S[s], m] != params["nabla", m])
                odd = odd sprintf(" %s %d", S[s], params[S[s], m])
        if (odd != "") printf "PARAMETERS DIFFER: %s: nabla %d,%s\n", m, params["nabla", m], odd
        else if (("nabla", m) in params) printf "parameters: %s %d on every side that ran\n", m, params["nabla", m]
    }
}
END {
    n = split(models, M, " ")
    ns = split("nabla nabla-openblas nabla-avx2 torch2-eager torch2-compile jax torch-debian", S, " ")
    np = split("torch2-eager torch2-compile jax torch-debian", P, " ")

    if (rounds > 1) printf "Each figure: the best of %d rounds, the sides in turn within each\n\n", rounds
    if (n > 0) {
        print "Training samples/s, Fashion-MNIST, Adam, batch 128: every figure"
        every_figure(M, n, "sps")
        print "\nTraining samples/s, each side at its best thread count"
        printf "| model | nabla | PyTorch 2.x eager | PyTorch 2.x compile | JAX jit | PyTorch Debian | nabla ÷ best peer | nabla GFLOP/s | ÷ nabla sgemm |\n"
        printf "|---|---|---|---|---|---|---|---|---|\n"
        for (i = 1; i <= n; i++) best_row(M[i], "sps")
    }
    sequence_tables()
    if (n == 0) { sgemm_line(); exit }

    print "\nBatch-1 inference latency, µs (median), each side at its best thread count"
    printf "| model | nabla | ONNX Runtime | ORT ÷ nabla |\n|---|---|---|---|\n"
    for (i = 1; i <= n; i++) {
        m = M[i]; a = best("nabla", m, "lat", 1); b = best("ort", m, "lat", 1)
        printf "| %s | %s | %s | %s |\n", m, with_t("nabla", m, "lat", 1), with_t("ort", m, "lat", 1),
            (a > 0 && b > 0) ? sprintf("**%.2f×**", b / a) : "-"
    }

    print "\nThe OpenBLAS path: nabla with NB_GEMM=openblas (OpenBLAS's own kernel choice) against PyTorch 2.x"
    printf "| model | nabla on OpenBLAS | best PyTorch 2.x | ratio | nabla (own kernel) ÷ nabla on OpenBLAS |\n|---|---|---|---|---|\n"
    for (i = 1; i <= n; i++) {
        m = M[i]; a = best("nabla-openblas", m, "sps", 0); b = best_torch2(m)
        own = best("nabla", m, "sps", 0)
        printf "| %s | %s | %s | %s | %s |\n", m, with_t("nabla-openblas", m, "sps", 0),
            torch2_cell(m, b), (a > 0 && b > 0) ? sprintf("**%.2f×**", a / b) : "-",
            (a > 0 && own > 0) ? sprintf("%.2f×", own / a) : "-"
    }

    avx2_table()
    sgemm_line()
}
# The better of PyTorch 2.x eager and compile on model m (torch2 names it).
function best_torch2(m,   e, c) {
    e = best("torch2-eager", m, "sps", 0); c = best("torch2-compile", m, "sps", 0)
    torch2 = e > c ? "torch2-eager" : "torch2-compile"
    return e > c ? e : c
}
function torch2_cell(m, b) { return b > 0 ? with_t(torch2, m, "sps", 0) " " substr(torch2, 8) : "missing" }
# Without AVX-512: nabla's AVX2 kernel against PyTorch 2.x and ONNX Runtime
# (which use the AVX-512 this CPU has), when the run has it.
function avx2_table(   i, m, a, b, la, lo) {
    for (i = 1; i <= n; i++) if (best("nabla-avx2", M[i], "sps", 0) > 0) break
    if (i > n) return
    print "\nWithout AVX-512: nabla's AVX2 kernel (NB_GEMM=avx2) against PyTorch 2.x and ONNX Runtime on their AVX-512 kernels"
    printf "| model | nabla on AVX2 | best PyTorch 2.x | ratio | latency, nabla on AVX2 | ONNX Runtime | ORT ÷ nabla |\n|---|---|---|---|---|---|---|\n"
    for (i = 1; i <= n; i++) {
        m = M[i]; a = best("nabla-avx2", m, "sps", 0); b = best_torch2(m)
        la = best("nabla-avx2", m, "lat", 1); lo = best("ort", m, "lat", 1)
        printf "| %s | %s | %s | %s | %s | %s | %s |\n", m, with_t("nabla-avx2", m, "sps", 0),
            torch2_cell(m, b), (a > 0 && b > 0) ? sprintf("**%.2f×**", a / b) : "-",
            with_t("nabla-avx2", m, "lat", 1), with_t("ort", m, "lat", 1),
            (la > 0 && lo > 0) ? sprintf("**%.2f×**", lo / la) : "-"
    }
}
function sgemm_line(   t) {
    print "\nsgemm 2048³: GFLOP/s (largest relative error of 256 entries against double precision)"
    for (t = 1; t <= maxt; t++) {
        if (("nabla", "nabla", t) in sg)
            printf "%dt: nabla's kernel %.1f (%s)", t, sg["nabla", "nabla", t], sgerr["nabla", "nabla", t]
        if (("nabla", "openblas", t) in sg)
            printf "; %s as the environment sets it %.1f (%s)", sgcore["nabla"], sg["nabla", "openblas", t], sgerr["nabla", "openblas", t]
        if (("nabla-openblas", "openblas", t) in sg)
            printf "; %s by its own choice %.1f (%s)", sgcore["nabla-openblas"], sg["nabla-openblas", "openblas", t], sgerr["nabla-openblas", "openblas", t]
        if (("nabla-avx2", "nabla", t) in sg)
            printf "; nabla's AVX2 kernel %.1f (%s)", sg["nabla-avx2", "nabla", t], sgerr["nabla-avx2", "nabla", t]
        printf "\n"
    }
}
