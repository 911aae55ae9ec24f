# coin's stratified randomisation test, in each direction, on many simulated trials, for
# fdkit's cross-check.
#
# Usage: Rscript simulate.R DESIGN.csv OUTCOME.csv OUT.csv RESAMPLES SEED
#   DESIGN.csv   one row per person: arm (treatment/control), block (wave x stratum)
#   OUTCOME.csv  one row per simulated trial, one column per person (same order as DESIGN.csv)
# Writes OUT.csv with columns p_reduction and p_increase: coin's approximate one-sided p-values
# of the stratified treated sum (alternative "less": fewer events among the treated, and
# "greater"), NA for a trial whose outcome does not vary. Both directions of a trial use the
# same re-draws (the same seed).

suppressPackageStartupMessages(library(coin))

args <- commandArgs(trailingOnly = TRUE)
design <- read.csv(args[1], stringsAsFactors = FALSE, colClasses = c(block = "character"))
trials <- as.matrix(read.csv(args[2], header = FALSE))
resamples <- as.integer(args[4])
seed <- as.integer(args[5])

# Treatment first: coin's linear statistic is then the treated sum, and "less" a reduction.
arm <- factor(design$arm, levels = c("treatment", "control"))
block <- factor(design$block)
one_sided <- function(y, alternative, trial) {
  set.seed(seed + trial)
  test <- independence_test(
    y ~ arm | block,
    data = data.frame(y = y, arm = arm, block = block),
    distribution = approximate(nresample = resamples), alternative = alternative
  )
  as.numeric(pvalue(test))
}
p_values <- t(vapply(seq_len(nrow(trials)), function(i) {
  y <- trials[i, ]
  if (length(unique(y)) == 1) return(c(NA_real_, NA_real_))  # no variation: no test
  c(one_sided(y, "less", i), one_sided(y, "greater", i))
}, numeric(2)))
write.csv(data.frame(p_reduction = p_values[, 1], p_increase = p_values[, 2]), args[3], row.names = FALSE)
