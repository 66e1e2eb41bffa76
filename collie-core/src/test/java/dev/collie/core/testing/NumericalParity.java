package dev.collie.core.testing;

import org.junit.jupiter.api.Tag;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * Marks a test that compares numbers across implementations or layouts (Hugging Face and PyTorch fixtures, n ranks
 * against one, one kernel against another). CI runs these a second time with the kernels capped to other
 * instruction sets ({@code .ci/run}), so a comparison that holds only on one CPU's summation order fails there;
 * select them with {@code mvn test -Dgroups=numerical}. Their figures go through {@link Agreement}.
 */
@Tag("numerical")
@Retention(RetentionPolicy.RUNTIME)
@Target({ElementType.TYPE, ElementType.METHOD})
public @interface NumericalParity {
}
