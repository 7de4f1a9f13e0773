# Reference values from R's mclust for fastgmm's tests (tests/test_mclust_msteps.py).
#
#   Rscript tests/mclust_reference/generate.R            # writes the *.json.gz files beside this script
#   Rscript tests/mclust_reference/generate.R --timings  # only times R's default Mclust(X)
#
# mclust is GPL: this script only *runs* it (black box); nothing of its code is used in fastgmm.
# Every number is written with 17 significant digits (an exact round trip of a double); R's NA
# becomes JSON null. The files are gzip-compressed JSON (name.json.gz). Arrays are nested in C
# order with R's component index moved first: sigma (K, D, D), mean (K, D), shape (K, D),
# orientation (K, D, D), partitions (n, 9).

suppressPackageStartupMessages({
  library(mclust)
  library(jsonlite)
})
stopifnot(packageVersion("mclust") == "6.0.0")
RNGkind("Mersenne-Twister", "Inversion", "Rejection")

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
out_dir <- if (length(script)) dirname(normalizePath(script)) else "."
timings <- "--timings" %in% commandArgs(trailingOnly = TRUE)

MODELS <- mclust.options("emModelNames")
GRID <- 1:9
CONTROL <- emControl(tol = c(1e-10, sqrt(.Machine$double.eps)))

# ---- JSON with exact doubles -------------------------------------------------------------------
num_json <- function(x) {
  # A numeric vector or array as nested JSON lists in C order, 17 significant digits, NA -> null.
  fmt <- function(v) ifelse(is.na(v), "null", sprintf("%.17g", v))
  d <- dim(x)
  if (is.null(d)) {
    if (length(x) == 1) return(structure(fmt(x), class = "json"))
    return(structure(paste0("[", paste(fmt(x), collapse = ","), "]"), class = "json"))
  }
  flat <- fmt(as.vector(aperm(x, rev(seq_along(d)))))  # C order
  nest <- function(v, dims) {
    if (length(dims) == 1) return(paste0("[", paste(v, collapse = ","), "]"))
    step <- length(v) / dims[1]
    parts <- vapply(seq_len(dims[1]), function(i) nest(v[((i - 1) * step + 1):(i * step)], dims[-1]), "")
    paste0("[", paste(parts, collapse = ","), "]")
  }
  structure(nest(flat, d), class = "json")
}
vec_json <- function(x) structure(paste0("[", paste(ifelse(is.na(x), "null", sprintf("%.17g", x)), collapse = ","), "]"), class = "json")

write_json_file <- function(obj, name) {
  path <- file.path(out_dir, paste0(name, ".json.gz"))
  txt <- toJSON(obj, auto_unbox = TRUE, json_verbatim = TRUE, null = "null", na = "null", digits = NA)
  con <- gzfile(path, "w", compression = 9)
  writeLines(txt, con)
  close(con)
  cat(sprintf("wrote %s (%.0f kB)\n", path, file.size(path) / 1024))
}

# ---- parameters in fastgmm's layout --------------------------------------------------------------
params_json <- function(p, K, D) {
  # pro, mean (K, D), sigma (K, D, D) and the decomposition (scale (K,), shape (K, D),
  # orientation (K, D, D)) where mclust reports it; scalars and shared parts are repeated over K.
  v <- p$variance
  out <- list(pro = vec_json(p$pro))
  mu <- matrix(p$mean, nrow = D)
  out$mean <- num_json(t(mu))
  if (!is.null(v$sigma)) out$sigma <- num_json(aperm(array(v$sigma, c(D, D, K)), c(3, 1, 2)))
  if (!is.null(v$scale)) out$scale <- vec_json(rep_len(v$scale, K))
  if (!is.null(v$shape)) {
    s <- if (is.null(dim(v$shape))) matrix(rep(v$shape, K), nrow = D) else matrix(v$shape, nrow = D)
    out$shape <- num_json(t(s))
  }
  if (!is.null(v$orientation)) {
    o <- if (length(dim(v$orientation)) == 2) array(rep(v$orientation, K), c(D, D, K)) else v$orientation
    out$orientation <- num_json(aperm(array(o, c(D, D, K)), c(3, 1, 2)))
  }
  if (!is.null(p$Vinv)) out$Vinv <- num_json(p$Vinv)
  out
}

quiet <- function(expr) {
  warnings <- character()
  value <- withCallingHandlers(tryCatch(expr, error = function(e) structure(list(), error = conditionMessage(e))),
    warning = function(w) {
      warnings <<- c(warnings, conditionMessage(w))
      invokeRestart("muffleWarning")
    })
  attr(value, "caught_warnings") <- warnings
  value
}

bic_table_json <- function(b) {
  list(G = as.integer(rownames(b)), models = colnames(b), table = num_json(unclass(b)[, , drop = FALSE]),
       return_codes = num_json(attr(b, "returnCodes")))
}

chosen <- function(b) {
  best <- names(pickBIC(b, 1))
  parts <- strsplit(best, ",")[[1]]
  list(model = parts[1], K = as.integer(parts[2]), value = num_json(unname(max(b, na.rm = TRUE))))
}

hc_partitions <- function(X) {
  tree <- hc(X, modelName = mclust.options("hcModelName"), use = mclust.options("hcUse"))
  cl <- hclass(tree, GRID)
  storage.mode(cl) <- "integer"
  unname(cl)
}

# ---- a. M-steps on the hierarchical partitions ---------------------------------------------------
mstep_cells <- function(X, cl, prior = NULL, models = MODELS) {
  D <- ncol(X)
  res <- list()
  for (m in models) {
    cells <- list()
    for (K in GRID) {
      r <- quiet(mstep(X, m, z = unmap(cl[, K]), prior = prior))
      cell <- list(K = K, caught_warnings = attr(r, "caught_warnings"))
      if (!is.null(attr(r, "error"))) {
        cell$ok <- FALSE
        cell$error <- attr(r, "error")
      } else {
        cell <- c(cell, params_json(r$parameters, K, D))
        cell$return_code <- attr(r, "returnCode")
        cell$ok <- !any(is.na(r$parameters$variance$sigma))
        if (!is.null(attr(r, "info"))) cell$info <- vec_json(unname(attr(r, "info")))
      }
      cells[[K]] <- cell
    }
    res[[m]] <- cells
  }
  res
}

# ---- the EM's own M-step: me() stopped after one iteration, on hard or soft weights ----------
# R's mstep() and the M-step inside me() differ for some models under a prior (EII, EEI, EVI,
# EEV); Mclust and mclustBIC use the latter, so both are recorded.
em_first_step <- function(X, z, prior = NULL, models = MODELS) {
  D <- ncol(X)
  K <- ncol(z)
  res <- list()
  for (m in models) {
    f <- quiet(me(X, m, z = z, prior = prior, control = emControl(itmax = c(1, .Machine$integer.max))))
    if (!is.null(attr(f, "error")) || is.null(f$parameters$variance$sigma) || any(is.na(f$parameters$variance$sigma))) {
      res[[m]] <- list(ok = FALSE)
    } else {
      res[[m]] <- c(list(ok = TRUE), params_json(f$parameters, K, D))
    }
  }
  res
}

soft_weights <- function(n, K, seed) {
  # Dirichlet(1, ..., 1) rows: responsibilities far from hard assignments
  set.seed(seed)
  z <- matrix(rexp(n * K), n)
  z / rowSums(z)
}

# ---- b. EM from the partition, for every cell (final parameters and log-likelihood) -------------
me_cells <- function(X, cl, table, keep_params) {
  D <- ncol(X)
  n <- nrow(X)
  res <- list()
  worst <- 0
  for (m in MODELS) {
    cells <- list()
    for (K in GRID) {
      f <- quiet(me(X, m, z = unmap(cl[, K]), control = CONTROL))
      cell <- list(K = K)
      ok <- is.null(attr(f, "error")) && !is.null(f$loglik) && !is.na(f$loglik)
      cell$ok <- ok
      if (ok) {
        b <- bic(m, f$loglik, n, D, K)
        cell$loglik <- num_json(f$loglik)
        cell$bic <- num_json(b)
        cell$iterations <- unname(attr(f, "info")[1])
        if (!is.na(table[K, m])) worst <- max(worst, abs(b - table[K, m]) / abs(b))
        if (keep_params(m, K)) cell <- c(cell, params_json(f$parameters, K, D))
      }
      cells[[K]] <- cell
    }
    res[[m]] <- cells
  }
  list(cells = res, max_rel_diff_to_mclustBIC = num_json(worst))
}

# ---- data sets ----------------------------------------------------------------------------------
rotation <- function(theta) matrix(c(cos(theta), sin(theta), -sin(theta), cos(theta)), 2)
random_orthogonal <- function(D) qr.Q(qr(matrix(rnorm(D * D), D)))
draw <- function(n, centres, factors, props) {
  # rows centre_k + z %*% t(factor_k), z standard normal, labels drawn with the given proportions
  lab <- sample(seq_along(props), n, replace = TRUE, prob = props)
  D <- ncol(centres)
  X <- matrix(0, n, D)
  for (k in seq_along(props)) {
    idx <- which(lab == k)
    X[idx, ] <- sweep(matrix(rnorm(length(idx) * D), ncol = D) %*% t(factors[[k]]), 2, centres[k, ], "+")
  }
  X
}

make_datasets <- function() {
  sets <- list()
  sets$faithful <- list(X = as.matrix(faithful), description = "R's faithful (Old Faithful eruptions, waiting)")
  sets$iris <- list(X = unname(as.matrix(iris[, 1:4])), description = "R's iris, the four measurements")

  set.seed(20240601)
  # elongated: three cigar-shaped clusters (axis ratio 25:1:0.2) with different orientations, D=3
  f <- lapply(1:3, function(k) random_orthogonal(3) %*% diag(c(5, 1, 0.2)))
  sets$elongated <- list(X = draw(450, rbind(c(0, 0, 0), c(12, 4, 0), c(-4, 12, 6)), f, c(0.3, 0.3, 0.4)),
                         description = "three elongated clusters (sd 5, 1, 0.2), random orientations, D=3, n=450")

  set.seed(20240602)
  # crossing: two long thin clusters crossing at right angles through almost the same centre, and a blob
  f <- list(rotation(pi / 6) %*% diag(c(3, 0.3)), rotation(2 * pi / 3) %*% diag(c(3, 0.3)), diag(c(0.8, 0.8)))
  sets$crossing <- list(X = draw(400, rbind(c(0, 0), c(0.5, 0.2), c(6, 6)), f, c(0.4, 0.4, 0.2)),
                        description = "two thin clusters crossing at right angles and a round one, D=2, n=400")

  set.seed(20240603)
  # unequal volumes: the same orientation and shape, sd 0.2, 1 and 4 (volume ratio 8000)
  base <- random_orthogonal(3) %*% diag(c(2, 1, 0.5))
  f <- list(0.2 * base, base, 4 * base)
  sets$unequal <- list(X = draw(600, rbind(c(0, 0, 0), c(4, 0, 0), c(0, 14, 0)), f, c(0.3, 0.4, 0.3)),
                       description = "three clusters of one shape and orientation, scales 0.2, 1, 4, D=3, n=600")

  set.seed(20240604)
  # ten dimensions: four clusters, random orientations and axis lengths
  D <- 10
  f <- lapply(1:4, function(k) random_orthogonal(D) %*% diag(exp(runif(D, -1, 1))))
  centres <- matrix(rnorm(4 * D, sd = 3), 4)
  sets$highdim <- list(X = draw(500, centres, f, c(0.25, 0.25, 0.3, 0.2)),
                       description = "four clusters with random covariances, D=10, n=500")
  sets
}

# ---- timings of R's default Mclust (for the speed comparison, not for the tests) ----------------
if (timings) {
  # Only the timings, then stop (the reference files are not rewritten).
  for (n in c(5000, 20000)) {
    set.seed(1)
    centres <- matrix(rnorm(5 * 4, sd = 4), 5)
    X <- draw(n, centres, lapply(1:5, function(k) diag(4)), rep(0.2, 5))
    t <- system.time(fit <- Mclust(X))["elapsed"]
    cat(sprintf("Mclust(X) default on %d x 4 blobs: %.1f s (chose %s, K=%d)\n", n, t, fit$modelName, fit$G))
  }
  quit(save = "no")
}

# ---- main ----------------------------------------------------------------------------------------
sets <- make_datasets()
prior_sets <- c("faithful", "iris", "elongated")
for (name in names(sets)) {
  X <- sets[[name]]$X
  n <- nrow(X)
  D <- ncol(X)
  cat(sprintf("%s: n=%d D=%d\n", name, n, D))
  cl <- hc_partitions(X)
  b <- mclustBIC(X, G = GRID, modelNames = MODELS, control = CONTROL)
  icl <- mclustICL(X, G = GRID, modelNames = MODELS, control = CONTROL)
  best <- chosen(b)
  # Final EM parameters of the cells K = 2, 3 of every model and of the chosen cell (the log-likelihood
  # of every cell is kept).
  keep <- function(m, K) K %in% 2:3 || (m == best$model && K == best$K)
  out <- list(
    name = name, description = sets[[name]]$description, n = n, d = D,
    X = num_json(X),
    hypvol = num_json(hypvol(X)),
    hc = list(modelName = mclust.options("hcModelName"), use = mclust.options("hcUse"),
              note = "hclass(hc(X), 1:9); column K is the partition into K groups", partitions = cl),
    mstep = mstep_cells(X, cl),
    bic = c(bic_table_json(b), list(sign = "mclust's: 2*loglik - npar*log(n), higher is better")),
    chosen_bic = best,
    me = me_cells(X, cl, b, keep),
    icl = bic_table_json(icl),
    chosen_icl = chosen(icl)
  )
  z_soft <- soft_weights(n, 3, 7)
  out$soft <- list(note = "me(X, model, z = z, control = emControl(itmax = c(1, integer.max))): the EM's first M-step",
                   z = num_json(z_soft), first_step = em_first_step(X, z_soft))
  if (name %in% prior_sets) {
    pb <- mclustBIC(X, G = GRID, modelNames = MODELS, prior = priorControl(), control = CONTROL)
    pbest <- chosen(pb)
    fp <- me(X, pbest$model, z = unmap(cl[, pbest$K]), prior = priorControl(), control = CONTROL)
    defaults <- list()
    for (m in MODELS) {
      defaults[[m]] <- lapply(GRID, function(K) {
        p <- defaultPrior(X, K, m)
        list(K = K, shrinkage = num_json(p$shrinkage), mean = vec_json(unname(p$mean)),
             dof = num_json(p$dof), scale = num_json(unname(p$scale)))
      })
    }
    out$prior <- list(
      call = "mclustBIC(X, G = 1:9, modelNames = <all 14>, prior = priorControl(), control = emControl(tol = c(1e-10, sqrt(eps))))",
      defaults = defaults,
      bic = bic_table_json(pb),
      chosen = pbest,
      fit = c(list(loglik = num_json(fp$loglik)), params_json(fp$parameters, pbest$K, D)),
      # With a prior, R's mstep returns zeros for VEE, EVE, VVE and EVV (mclustBIC leaves them out):
      # only the ten models that support it are stored.
      mstep = mstep_cells(X, cl, prior = priorControl(), models = colnames(pb)),
      soft_first_step = em_first_step(X, z_soft, prior = priorControl(), models = colnames(pb)),
      hard_first_step = lapply(GRID, function(K) em_first_step(X, unmap(cl[, K]), prior = priorControl(), models = colnames(pb)))
    )
  }
  write_json_file(out, name)
}

# ---- d. a noise fit ------------------------------------------------------------------------------
set.seed(20240605)
n_clust <- 400
n_noise <- 100
f <- list(diag(c(1, 0.6)), rotation(pi / 4) %*% diag(c(1.2, 0.4)), diag(c(0.7, 0.7)))
X1 <- draw(n_clust, rbind(c(0, 0), c(5, 1), c(2, 5)), f, c(0.35, 0.35, 0.3))
lo <- apply(X1, 2, min) - 2
hi <- apply(X1, 2, max) + 2
Xn <- cbind(runif(n_noise, lo[1], hi[1]), runif(n_noise, lo[2], hi[2]))
X <- rbind(X1, Xn)
mask <- c(rep(FALSE, n_clust), rep(TRUE, n_noise))
cat(sprintf("noise: n=%d D=%d\n", nrow(X), ncol(X)))
fit <- Mclust(X, G = GRID, modelNames = MODELS, initialization = list(noise = mask), control = CONTROL)
sub <- hc_partitions(X[!mask, ])
write_json_file(list(
  name = "noise",
  description = "three clusters (n=400) and 100 uniform points on their bounding box widened by 2, D=2",
  call = "Mclust(X, G = 1:9, modelNames = <all 14>, initialization = list(noise = noise_init), control = emControl(tol = c(1e-10, sqrt(eps))))",
  n = nrow(X), d = ncol(X), X = num_json(X), noise_init = mask,
  hypvol = num_json(hypvol(X)), fit_hypvol = num_json(fit$hypvol),
  hc_partitions_of_non_noise_rows = sub,
  bic = c(bic_table_json(fit$BIC), list(sign = "mclust's: 2*loglik - npar*log(n), higher is better")),
  chosen = list(model = fit$modelName, K = fit$G),
  fit = c(list(loglik = num_json(fit$loglik), bic = num_json(fit$bic), icl = num_json(fit$icl), df = fit$df),
          params_json(fit$parameters, fit$G, ncol(X)))
), "noise")

# ---- counts, hypervolumes and versions -----------------------------------------------------------
counts <- list()
for (d in c(2, 3, 4, 5, 10)) for (G in GRID) for (noise in c(FALSE, TRUE)) {
  counts[[length(counts) + 1]] <- list(d = d, G = G, noise = noise,
    n_parameters = as.list(mapply(nMclustParams, MODELS, d = d, G = G, noise = noise)))
}
write_json_file(list(
  r_version = R.version.string, mclust_version = as.character(packageVersion("mclust")),
  generated = format(Sys.Date()), models = MODELS,
  control = list(tol = vec_json(CONTROL$tol), itmax = CONTROL$itmax, eps = num_json(CONTROL$eps)),
  mstep_default_control = "mstep() uses emControl()'s defaults: inner tol sqrt(eps), itmax .Machine$integer.max",
  hc = list(modelName = mclust.options("hcModelName"), use = mclust.options("hcUse"), subset = mclust.options("subset")),
  n_parameters = counts
), "meta")
