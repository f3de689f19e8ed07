# Reference values for the simulator's model of Kayenta's classifier
# (src/simulate/methods.rs): R's asymptotic Wilcoxon interval with continuity correction
# at 98% confidence, which Kayenta's Mann-Whitney classifier ports.
# Run: Rscript tests/reference/kayenta.R > tests/reference/kayenta.json
cases <- list(
  list(name = "kayenta-suite", canary = c(10, 20, 30, 40), baseline = c(1, 2, 3, 4)),
  list(name = "ties", canary = c(1, 1, 2, 2, 2, 3, 5, 8, 8, 9), baseline = c(1, 1, 1, 2, 2, 3, 3, 4, 4, 4, 6)),
  list(name = "sparse-errors", canary = c(0, 0, 0, 0, 0.004, 0, 0, 0.01, 0, 0, 0, 0),
       baseline = c(0, 0, 0, 0, 0, 0, 0, 0.002, 0, 0, 0, 0)),
  list(name = "shifted", canary = c(105, 98, 130, 121, 99, 143, 110, 117, 125, 101, 133, 119),
       baseline = c(100, 92, 97, 111, 88, 104, 95, 102, 99, 120, 93, 90))
)
fmt <- function(x) trimws(formatC(x, digits = 15, format = "g"))
out <- c()
for (case in cases) {
  r <- suppressWarnings(wilcox.test(case$canary, case$baseline, conf.int = TRUE, conf.level = 0.98,
                                    exact = FALSE, correct = TRUE, tol.root = 1e-10))
  out <- c(out, sprintf(
    '{"name": "%s", "canary": [%s], "baseline": [%s], "lower": %s, "estimate": %s, "upper": %s}',
    case$name, paste(fmt(case$canary), collapse = ", "), paste(fmt(case$baseline), collapse = ", "),
    fmt(r$conf.int[1]), fmt(r$estimate), fmt(r$conf.int[2])))
}
cat("[\n", paste(out, collapse = ",\n"), "\n]\n", sep = "")
