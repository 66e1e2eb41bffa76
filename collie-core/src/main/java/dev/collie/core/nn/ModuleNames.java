package dev.collie.core.nn;

import java.util.regex.Pattern;

/** The module-name patterns of a model's plans (tensor parallel, activation checkpointing). */
public final class ModuleNames {
    private ModuleNames() {
    }

    /**
     * A plan pattern as a regular expression over a whole dotted module name: {@code *} one name component,
     * {@code (a|b)} alternatives, everything else literal.
     */
    public static Pattern pattern(String pattern) {
        StringBuilder re = new StringBuilder();
        for (char ch : pattern.toCharArray()) {
            switch (ch) {
                case '*' -> re.append("[^.]+");
                case '(' -> re.append("(?:");
                case ')', '|' -> re.append(ch);
                default -> {
                    if (Character.isLetterOrDigit(ch) || ch == '_') {
                        re.append(ch);
                    } else {
                        re.append('\\').append(ch);
                    }
                }
            }
        }
        return Pattern.compile(re.toString());
    }
}
