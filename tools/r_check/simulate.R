# coin's stratified randomisation test on many simulated trials, for fdkit's cross-check.
#
# Usage: Rscript simulate.R DESIGN.csv OUTCOME.csv OUT.csv RESAMPLES SEED
#   DESIGN.csv   one row per person: arm (treatment/control), block (wave x stratum)
#   OUTCOME.csv  one row per simulated trial, one column per person (same order as DESIGN.csv)
# Writes OUT.csv with one column p_value: coin's approximate two-sided p of the stratified
# linear statistic (the unstudentised difference in means) for each trial.

suppressPackageStartupMessages(library(coin))

args <- commandArgs(trailingOnly = TRUE)
design <- read.csv(args[1], stringsAsFactors = FALSE, colClasses = c(block = "character"))
trials <- as.matrix(read.csv(args[2], header = FALSE))
resamples <- as.integer(args[4])
set.seed(as.integer(args[5]))

arm <- factor(design$arm, levels = c("control", "treatment"))
block <- factor(design$block)
p_values <- vapply(seq_len(nrow(trials)), function(i) {
  y <- trials[i, ]
  if (length(unique(y)) == 1) return(NA_real_)  # no variation: no test
  test <- independence_test(
    y ~ arm | block,
    data = data.frame(y = y, arm = arm, block = block),
    distribution = approximate(nresample = resamples), alternative = "two.sided"
  )
  as.numeric(pvalue(test))
}, numeric(1))
write.csv(data.frame(p_value = p_values), args[3], row.names = FALSE)
